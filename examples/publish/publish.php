<?php
// Publish to a Kobold hub channel from PHP through the hub's UNIX socket.
// Usage: php publish.php /path/to/publish.sock news:site '{"title":"Hello"}'
// One JSON command per line; the hub answers one JSON line per command.

function kobold_command($socketPath, array $command)
{
    $socket = stream_socket_client('unix://' . $socketPath, $errno, $errstr, 2.0);
    if ($socket === false) {
        throw new RuntimeException("cannot connect to $socketPath: $errstr ($errno)");
    }
    stream_set_timeout($socket, 5);
    fwrite($socket, json_encode($command) . "\n");
    $line = fgets($socket);
    fclose($socket);
    if ($line === false) {
        throw new RuntimeException('no reply from the hub');
    }
    $reply = json_decode($line, true);
    if (isset($reply['error'])) {
        throw new RuntimeException($reply['error']['code'] . ': ' . $reply['error']['message']);
    }
    return $reply['result'];
}

$socketPath = $argv[1] ?? '/run/kobold/publish.sock';
$channel = $argv[2] ?? 'news:site';
$data = json_decode($argv[3] ?? '{"title":"Hello from PHP"}', true);

$position = kobold_command($socketPath, ['method' => 'publish', 'channel' => $channel, 'data' => $data]);
echo "published at offset {$position['offset']} (epoch {$position['epoch']})\n";
