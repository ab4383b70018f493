// Starts an in-memory PLC directory and N Bluesky PDSes on loopback for ferry's end-to-end
// tests, prints one line of JSON describing them on stdout, and runs until SIGTERM, SIGINT
// or the end of its standard input.
//
// Usage: node run.mjs DATA_DIR N
//
// It is run by internal/testenv (pds.go) with Node 22 from the install made by
// install-pds.sh, from a directory whose node_modules links to that install. Everything is
// offline: the PDSes share the PLC, their app view and moderation services point at a
// dead loopback port, and no server listens beyond 127.0.0.1.
//
// Output: {"plc":"http://127.0.0.1:P","jwtSecret":"…","adminPassword":"…",
//          "pds":[{"url":"http://localhost:P","did":"did:web:localhost%3AP","port":P},…]}
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

// The PDS and the PLC server listen with listen(port), which binds every interface; a test
// server must not be reachable from outside, so a bare port is bound to 127.0.0.1.
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}

const [dataDir, countArg] = process.argv.slice(2)
const count = Number.parseInt(countArg ?? '1', 10)
if (!dataDir || !(count >= 1)) {
  console.error('usage: node run.mjs DATA_DIR N')
  process.exit(2)
}

// freePort asks the kernel for a free loopback port. The PDS needs its port before it
// starts (its public URL and service DID contain it).
const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

// A port where nothing listens: the app view and moderation service the PDS would proxy
// to. Calls that need them fail fast instead of leaving the machine.
const deadPort = await freePort()
const dead = `http://127.0.0.1:${deadPort}`

const plcMod = await import('@did-plc/server')
const { PlcServer, Database } = plcMod.default ?? plcMod
const plc = PlcServer.create({ db: Database.mock(), port: 0 })
const plcServer = await plc.start()
// "localhost", not 127.0.0.1: the PDS's DID resolver (used to check the service-auth
// tokens of account migrations) refuses URLs whose host is an IP address.
const plcUrl = `http://localhost:${plcServer.address().port}`

const pdsMod = await import('@atproto/pds')
const { PDS, envToCfg, envToSecrets } = pdsMod.default?.PDS ? pdsMod.default : pdsMod

const jwtSecret = crypto.randomBytes(16).toString('hex')
const adminPassword = crypto.randomBytes(16).toString('hex')
const servers = []
const out = { plc: plcUrl, jwtSecret, adminPassword, pds: [] }

const stop = async (code) => {
  for (const s of servers) {
    await s.destroy().catch((err) => console.error('stop PDS:', err))
  }
  await plc.destroy().catch((err) => console.error('stop PLC:', err))
  process.exit(code)
}

try {
  for (let i = 0; i < count; i++) {
    const port = await freePort()
    const dir = path.join(dataDir, `pds${i + 1}`)
    fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true })
    const env = {
      devMode: true,
      port,
      hostname: 'localhost',
      serviceDid: `did:web:localhost%3A${port}`,
      serviceName: `ferry-e2e-pds${i + 1}`,
      dataDirectory: dir,
      blobstoreDiskLocation: path.join(dir, 'blobs'),
      didPlcUrl: plcUrl,
      serviceHandleDomains: ['.test'],
      inviteRequired: false,
      rateLimitsEnabled: false,
      disableSsrfProtection: true,
      bskyAppViewUrl: dead,
      bskyAppViewDid: 'did:example:appview',
      bskyAppViewCdnUrlPattern: `${dead}/%s/%s/%s`,
      modServiceUrl: dead,
      modServiceDid: 'did:example:moderation',
      crawlers: [],
      jwtSecret,
      adminPassword,
      plcRotationKeyK256PrivateKeyHex: crypto.randomBytes(32).toString('hex'),
    }
    const server = await PDS.create(envToCfg(env), envToSecrets(env))
    await server.start()
    servers.push(server)
    out.pds.push({ url: `http://localhost:${port}`, did: env.serviceDid, port })
  }
} catch (err) {
  console.error('start:', err)
  await stop(1)
}

process.stdout.write(JSON.stringify(out) + '\n')

process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))
// The test binary holds our standard input; when it goes away, so do we.
process.stdin.on('end', () => stop(0))
process.stdin.resume()
