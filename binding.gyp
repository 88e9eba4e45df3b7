{
  "targets": [
    {
      "target_name": "kobold_shm",
      "sources": ["native/kobold_shm.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "libraries": ["-lrt", "-lpthread"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
