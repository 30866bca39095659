// A real Wechaty puppet service (gRPC) backed by the mock puppet, for Qunfu's gateway tests.
//
//   node puppet_server.mjs --port 8788 [--tls]
//   env: WECHATY_PUPPET_SERVICE_TOKEN (required), QUNFU_HARNESS_BOT_ID (default qunfu-bot)
//
// Control protocol: JSON lines. Commands come in on stdin, reports go out on stdout; wechaty's
// own logs go to stderr. Every command may carry a "seq", echoed back in its "ok"/"error" reply.
//
//   {"cmd": "contact", "id": "u1", "name": "张三"}
//   {"cmd": "room", "id": "r1@chatroom", "topic": "福利1群", "members": ["u1"]}   (bot included)
//   {"cmd": "join", "room": "r1@chatroom", "members": ["u2"], "inviter": "u1"}
//   {"cmd": "leave", "room": "r1@chatroom", "members": ["u2"], "remover": "u1"}
//   {"cmd": "say", "from": "u1", "room": "r1@chatroom", "text": "@群福助手 hi", "mentions": ["qunfu-bot"]}
//   {"cmd": "say", "from": "u1", "text": "hi"}               (private message to the bot)
//   {"cmd": "location", "from": "u1", "lat": 22.54, "lon": 113.93, "label": "科技园"}
//   {"cmd": "location", "from": "u1", "raw": "<msg>broken"}  (a location message with raw text)
//   {"cmd": "card", "from": "u1", "room": "r1@chatroom", "type": "Contact"|"Url"|"Image", "text": "..."}
//                                                       (a non-text message; the mock's messageUrl
//                                                        answers url "https://mock.url"; an
//                                                        "Image" card has no picture: the
//                                                        service's messageImage fails for it)
//   {"cmd": "image", "from": "u1", "room": "r1@chatroom", "base64": "iVBOR...", "name": "a.png"}
//   {"cmd": "image", "from": "u1", "room": "r1@chatroom", "qrcode": "https://..."}
//                                                      (an image message whose picture the
//                                                       service serves as a FileBox: Base64 up to
//                                                       20 KB inline, larger ones as a Uuid box to
//                                                       Download, as wechaty-puppet-service does;
//                                                       or a QRCode box)
//   {"cmd": "friendship", "from": "u3", "hello": "你好"}
//   {"cmd": "quit"}
//
// Reports:
//   {"event": "ready", "port": 8788, "bot_id": "qunfu-bot", "tls": false, "ca": "..."?}
//   {"event": "sent", "conversation": "r1@chatroom", "room": true, "text": "...", "mentions": [...]}
//   {"event": "invite" | "remove", "room": "r1@chatroom", "contact": "u2"}
//   {"event": "friendship-accept", "friendship": "f-..."}
//   {"event": "ok", "seq": ...} / {"event": "error", "seq": ..., "error": "..."}
//
// Room ids must contain "@" (the mock tells rooms from contacts that way).

import readline from 'node:readline'
import { parseArgs } from 'node:util'

import { FileBox } from 'file-box'
import * as PUPPET from 'wechaty-puppet'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import { PuppetServer } from 'wechaty-puppet-service'

// Keep stdout for the protocol: anything the libraries print goes to stderr.
console.log = console.error
console.info = console.error

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.QUNFU_HARNESS_PORT ?? '8788' },
    tls: { type: 'boolean', default: false },
  },
})
const port = Number(args.port)
const token = process.env.WECHATY_PUPPET_SERVICE_TOKEN
if (!token) {
  console.error('WECHATY_PUPPET_SERVICE_TOKEN is required')
  process.exit(2)
}
const botId = process.env.QUNFU_HARNESS_BOT_ID ?? 'qunfu-bot'

const mocker = new mock.Mocker()
const puppet = new PuppetMock({ mocker })
const friendships = new Map()
const pictures = new Map() // message id -> FileBox served by messageImage

// Report what the bot does, then let the mock do it (a sent text comes back as a message event,
// as it does on a real account; invites and removals become room-join / room-leave events).
const sendText = puppet.messageSendText.bind(puppet)
puppet.messageSendText = async (conversationId, text, mentionIdList = []) => {
  emit({
    event: 'sent',
    conversation: conversationId,
    room: conversationId.includes('@'),
    text,
    mentions: mentionIdList ?? [],
  })
  return sendText(conversationId, text)
}
puppet.roomAdd = async (roomId, contactId) => {
  emit({ event: 'invite', room: roomId, contact: contactId })
  mocker.RoomMock.load(roomId).add(mocker.ContactMock.load(contactId)).by(bot)
}
puppet.roomDel = async (roomId, contactId) => {
  emit({ event: 'remove', room: roomId, contact: contactId })
  mocker.RoomMock.load(roomId).remove(mocker.ContactMock.load(contactId)).by(bot)
}
puppet.friendshipRawPayload = async (id) => {
  const payload = friendships.get(id)
  if (!payload) throw new Error(`no friendship ${id}`)
  return payload
}
// The mock answers every messageImage with a fixed QRCode box; serve the picture the test gave.
puppet.messageImage = async (id) => {
  const box = pictures.get(id)
  if (!box) throw new Error(`no picture for message ${id}`)
  return box
}
puppet.friendshipAccept = async (id) => {
  emit({ event: 'friendship-accept', friendship: id })
}

const contact = (id) => mocker.ContactMock.load(id)
const room = (id) => mocker.RoomMock.load(id)

function pushMessage (payload) {
  const msg = mocker.MessageMock.create({
    id: `m-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    timestamp: Date.now(),
    ...payload,
  })
  puppet.emit('message', { messageId: msg.id })
  return msg.id
}

function conversationOf (cmd) {
  if (cmd.room) return { roomId: cmd.room }
  return { listenerId: cmd.to ?? botId }
}

const commands = {
  contact: (c) => { mocker.createContact({ id: c.id, name: c.name ?? c.id }) },
  room: (c) => {
    const members = [botId, ...(c.members ?? []).filter((m) => m !== botId)]
    mocker.createRoom({ id: c.id, topic: c.topic ?? c.id, memberIdList: members, ownerId: botId })
  },
  join: (c) => {
    room(c.room).add(...c.members.map(contact)).by(contact(c.inviter ?? botId))
  },
  leave: (c) => {
    room(c.room).remove(...c.members.map(contact)).by(contact(c.remover ?? botId))
  },
  say: (c) => {
    if (c.room) {
      contact(c.from).say(c.text, (c.mentions ?? []).map(contact)).to(room(c.room))
    } else {
      contact(c.from).say(c.text).to(contact(c.to ?? botId))
    }
  },
  location: (c) => {
    const text = c.raw ?? '<?xml version="1.0"?>\n<msg>\n'
      + `\t<location x="${c.lat}" y="${c.lon}" scale="16" label="${c.label ?? ''}" `
      + `maptype="roadmap" poiname="${c.poiname ?? c.label ?? ''}" poiid="" />\n</msg>`
    return {
      message: pushMessage({
        talkerId: c.from,
        type: PUPPET.types.Message.Location,
        text,
        ...conversationOf(c),
      }),
    }
  },
  card: (c) => ({
    message: pushMessage({
      talkerId: c.from,
      type: PUPPET.types.Message[c.type],
      text: c.text ?? '',
      ...conversationOf(c),
    }),
  }),
  image: (c) => {
    const box = c.qrcode
      ? FileBox.fromQRCode(c.qrcode)
      : FileBox.fromBase64(c.base64, c.name ?? 'image.png')
    // Served before the message event goes out, so the bot's first messageImage finds it.
    const id = `m-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
    pictures.set(id, box)
    pushMessage({
      id,
      talkerId: c.from,
      type: PUPPET.types.Message.Image,
      text: '<msg><img length="1" /></msg>',
      ...conversationOf(c),
    })
    return { message: id }
  },
  friendship: (c) => {
    const id = `f-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
    friendships.set(id, {
      id,
      contactId: c.from,
      hello: c.hello ?? '',
      type: PUPPET.types.Friendship.Receive,
      timestamp: Date.now(),
      ticket: 'ticket',
    })
    puppet.emit('friendship', { friendshipId: id })
    return { friendship: id }
  },
  quit: async () => {
    await shutdown(0)
  },
}

let server
let bot

async function shutdown (code) {
  try {
    if (server) await server.stop()
    await puppet.stop()
  } finally {
    process.exit(code)
  }
}

async function main () {
  await puppet.start()
  bot = mocker.createContact({ id: botId, name: '群福助手' })
  mocker.login(bot)

  const tls = { disable: !args.tls }
  server = new PuppetServer({ endpoint: `127.0.0.1:${port}`, puppet, token, tls })
  await server.start()

  const ready = { event: 'ready', port, bot_id: botId, tls: !tls.disable }
  if (args.tls) {
    const ca = await import(new URL(
      './node_modules/wechaty-puppet-service/dist/esm/src/auth/ca.js', import.meta.url))
    ready.ca = ca.TLS_CA_CERT
    ready.server_name = ca.TLS_INSECURE_SERVER_CERT_COMMON_NAME
  }
  emit(ready)

  const lines = readline.createInterface({ input: process.stdin })
  // One command at a time, in order: a test's setup steps depend on each other.
  let chain = Promise.resolve()
  lines.on('line', (line) => { chain = chain.then(() => handle(line)) })
  // The test runner went away: do not linger holding the port.
  lines.on('close', () => { void chain.then(() => shutdown(0)) })
}

async function handle (line) {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    emit({ event: 'error', error: `not JSON: ${e.message}` })
    return
  }
  const handler = commands[cmd.cmd]
  if (!handler) {
    emit({ event: 'error', seq: cmd.seq, error: `unknown cmd ${cmd.cmd}` })
    return
  }
  try {
    const extra = await handler(cmd)
    emit({ event: 'ok', seq: cmd.seq, cmd: cmd.cmd, ...(extra ?? {}) })
  } catch (e) {
    emit({ event: 'error', seq: cmd.seq, cmd: cmd.cmd, error: String(e?.message ?? e) })
  }
}

process.on('SIGTERM', () => { void shutdown(0) })
process.on('SIGINT', () => { void shutdown(0) })

main().catch((e) => {
  console.error('harness failed to start:', e)
  process.exit(1)
})
