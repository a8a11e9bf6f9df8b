/**
 * A local MQTT broker for the publish and end-to-end runs: mosquitto when it is installed (what a
 * lab would run next to the microscope), else aedes in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalBroker {
  kind: string;
  url: string;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const MOSQUITTO_PATHS = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/opt/homebrew/sbin/mosquitto'];

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error('mosquitto did not start listening');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startMosquitto(bin: string): Promise<LocalBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type error\n`,
  );
  const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  await waitForPort(port, 5000, child);
  const version = await new Promise<string>((resolve) => {
    const v = spawn(bin, ['-h'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    v.stdout.on('data', (d: Buffer) => (out += d.toString()));
    v.on('close', () => resolve(/mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown'));
    v.on('error', () => resolve('unknown'));
  });
  return {
    kind: `mosquitto ${version} (separate process)`,
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        // mosquitto notices SIGTERM only when its event loop wakes: do not wait on it for long.
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startAedes(): Promise<LocalBroker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const srv: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    kind: 'aedes (in the benchmark process)',
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

export async function startLocalBroker(prefer: 'auto' | 'aedes' = 'auto'): Promise<LocalBroker> {
  const bin = MOSQUITTO_PATHS.find((p) => existsSync(p));
  if (prefer === 'auto' && bin) {
    try {
      return await startMosquitto(bin);
    } catch {
      /* fall back to aedes */
    }
  }
  return startAedes();
}
