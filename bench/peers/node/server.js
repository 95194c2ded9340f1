"use strict";
// bench.fanout's Node.js peer: one instance of a group chat on socket.io.
//
// Written as a socket.io user would write it: socket.io on Node's http server,
// @socket.io/redis-adapter so that several instances share rooms through Redis (node-redis,
// the pairing its documentation shows), and the official `mongodb` driver. Like the relay it
// has no auth: a client `join`s a room, and a `send` into a room it joined is inserted into
// MongoDB (one insert into a collection of its own), emitted to the room and acknowledged.
//
//     PEER_PORT=... PEER_MONGODB_URL=... node server.js   (settings: bench/peers/__init__.py)

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const { MongoClient } = require("mongodb");

// The same frame limit the relay and the message service have.
const MAX_FRAME_BYTES = 64 * 1024;
const COLLECTION = "node_messages";

async function main(env) {
  const mongo = new MongoClient(env.PEER_MONGODB_URL);
  await mongo.connect();
  const messages = mongo.db(env.PEER_MONGODB_DB).collection(COLLECTION);
  // A conversation's history is read newest first, a page at a time.
  await messages.createIndex({ conversation_id: 1, _id: -1 });
  const pubClient = createClient({ url: env.PEER_REDIS_URL });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);

  // Plain `GET /readyz`, so the harness polls this peer like the real services.
  const httpServer = http.createServer((request, response) => {
    const found = request.url === "/readyz";
    response.writeHead(found ? 200 : 404).end(found ? "ok\n" : "");
  });
  const io = new Server(httpServer, {
    adapter: createAdapter(pubClient, subClient, { key: env.PEER_CHANNEL }),
    serveClient: false,
    maxHttpBufferSize: MAX_FRAME_BYTES,
    perMessageDeflate: env.PEER_COMPRESSION === "true",
  });

  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack("joined");
    });
    socket.on("send", async (frame, ack) => {
      const room = frame.conversation_id;
      if (!socket.rooms.has(room)) {
        ack({ error: "not_a_member" });
        return;
      }
      const document = {
        conversation_id: room,
        sender_id: socket.id,
        body: frame.body,
        client_msg_id: frame.client_msg_id,
        created_at: new Date(),
      };
      try {
        await messages.insertOne(document);
      } catch (error) {
        console.error("ERROR insert failed:", error);
        ack({ error: "service_unavailable" });
        return;
      }
      const message = {
        id: document._id.toHexString(),
        conversation_id: room,
        sender_id: socket.id,
        body: frame.body,
        client_msg_id: frame.client_msg_id,
        created_at: document.created_at.toISOString(),
      };
      io.to(room).emit("message", message);
      ack({ id: message.id, created_at: message.created_at });
    });
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    io.close();
    await Promise.allSettled([mongo.close(), pubClient.quit(), subClient.quit()]);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  httpServer.listen(Number(env.PEER_PORT), "127.0.0.1");
}

main(process.env).catch((error) => {
  console.error("ERROR", error);
  process.exit(1);
});
