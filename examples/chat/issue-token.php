<?php
// Signs a host-site token for Kobold chat (HS256 JWT) with the chat's `siteSecret`.
// The page then opens /#siteToken=<token>; the chat exchanges it for its own session.
// No library needed: a JWT is three base64url parts and an HMAC.

function base64url(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

function kobold_chat_token(string $secret, string $userId, string $name, array $roles = [], int $ttlSeconds = 300): string
{
    $header = ['alg' => 'HS256', 'typ' => 'JWT'];
    $claims = [
        'sub' => $userId,              // stable user id: letters, digits, _-.@=,#!~+ (not "guest-…")
        'name' => $name,               // shown to others, always as text
        'roles' => $roles,             // e.g. ['moderator'] for /mute /kick /ban /unban
        'iat' => time(),
        'exp' => time() + $ttlSeconds, // short: it is only exchanged once, at sign-in
    ];
    $signingInput = base64url(json_encode($header)) . '.' . base64url(json_encode($claims, JSON_UNESCAPED_UNICODE));
    return $signingInput . '.' . base64url(hash_hmac('sha256', $signingInput, $secret, true));
}

// The same value as `siteSecret` in the chat app's config (at least 32 characters), kept out of the web root.
$secret = getenv('KOBOLD_CHAT_SITE_SECRET');
$token = kobold_chat_token($secret, (string) $currentUser->id, $currentUser->displayName, $currentUser->isModerator ? ['moderator'] : []);
?>
<iframe title="Chat" src="https://chat.example.com/#siteToken=<?= htmlspecialchars($token, ENT_QUOTES) ?>" width="100%" height="600"></iframe>
