// A tiny Socket.IO 4 rooms server for the benchmarks.
//   connect:  /socket.io/?EIO=4&transport=websocket[&room=ROOM]   (joins ROOM when given)
//   publish:  emit("pub", ROOM, data)  ->  every socket in ROOM gets emit("m", data)
// Usage: node sio-server.js PORT
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3001);
const server = http.createServer();
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === "string" && room.length > 0) socket.join(room);
  socket.on("pub", (target, data) => {
    io.to(String(target)).emit("m", data);
  });
});

server.listen(port, "127.0.0.1", () => {
  console.log(`socket.io listening on http://127.0.0.1:${port}`);
});
