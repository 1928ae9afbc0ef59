// A js-libp2p peer for tests/interop: an unmodified libp2p 3 stack (TCP, pnet, Noise,
// Yamux, identify, gossipsub) joining a p2pcity chain with files p2pcity wrote.
//
//   node --import ./polyfill.mjs peer.mjs CONFIG.json
//
// CONFIG: {"key": identity file (libp2p PrivateKey protobuf), "swarm_key": swarm.key file
// or null, "listen": multiaddr, "dial": [multiaddr with /p2p/...], "topics": [topic ids]}.
// Reports one JSON object per line on stdout; reads commands as JSON lines on stdin:
//   {"cmd": "publish", "topic": T, "hex": DATA}   {"cmd": "stop"}
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const report = (event) => process.stdout.write(JSON.stringify(event) + '\n')

const node = await createLibp2p({
  privateKey: privateKeyFromProtobuf(readFileSync(config.key)),
  addresses: { listen: [config.listen] },
  transports: [tcp()],
  ...(config.swarm_key ? { connectionProtector: preSharedKey({ psk: readFileSync(config.swarm_key) }) } : {}),
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false })
  }
})

node.addEventListener('peer:connect', (evt) => report({ event: 'connected', peer: evt.detail.toString() }))
node.addEventListener('peer:identify', (evt) => report({
  event: 'identified', peer: evt.detail.peerId.toString(), protocols: evt.detail.protocols
}))
node.services.pubsub.addEventListener('message', (evt) => {
  const msg = evt.detail
  report({ event: 'message', topic: msg.topic, from: msg.type === 'signed' ? msg.from.toString() : null, bytes: msg.data.length })
})
for (const topic of config.topics) node.services.pubsub.subscribe(topic)
report({ event: 'ready', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

let stopping = false
async function dialLoop (addr) {
  // p2pcity nodes dial us too; whichever connection comes up first is kept.
  for (let attempt = 1; !stopping && attempt <= 60; attempt++) {
    const ma = multiaddr(addr)
    const peer = addr.split('/p2p/').pop()
    if (node.getConnections().some((c) => c.remotePeer.toString() === peer)) return
    try {
      await node.dial(ma, { signal: AbortSignal.timeout(5000) })
      return
    } catch (err) {
      if (attempt === 1 || (attempt & (attempt - 1)) === 0) {
        report({ event: 'dial-failed', addr, attempt, error: `${err.name}: ${err.message}` })
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}
for (const addr of config.dial) dialLoop(addr)

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line)
  if (command.cmd === 'publish') {
    try {
      const result = await node.services.pubsub.publish(command.topic, Buffer.from(command.hex, 'hex'))
      report({ event: 'published', topic: command.topic, recipients: result.recipients.map(String) })
    } catch (err) {
      report({ event: 'publish-failed', topic: command.topic, error: `${err.name}: ${err.message}` })
    }
  } else if (command.cmd === 'stop') {
    break
  }
}
stopping = true
await node.stop()
report({ event: 'stopped' })
process.exit(0)
