import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { type RedisProcess, startRedisServer } from './redis-server.js';

export interface RedisClusterProcess {
  masters: RedisProcess[];
  replicas: RedisProcess[];
  nodes: Array<{ host: string; port: number }>;
  connect(options?: ConstructorParameters<typeof Cluster>[1]): Cluster;
  stop(): Promise<void>;
}

const SLOTS = 16_384;

async function clusterReady(client: Redis, masters: number): Promise<boolean> {
  const info = await client.cluster('INFO');
  const nodes = String(await client.cluster('NODES'));
  const knownMasters = nodes
    .split('\n')
    .filter((line) => line.includes('master') && !line.includes('fail')).length;
  return String(info).includes('cluster_state:ok') && knownMasters >= masters;
}

/**
 * Starts a real Redis Cluster from `redis-server` processes: `masters` masters holding all slots,
 * each with `replicasPerMaster` replicas. Built with CLUSTER MEET/ADDSLOTSRANGE/REPLICATE, so only
 * `redis-server` itself is needed.
 */
export async function startRedisCluster(masters = 3, replicasPerMaster = 0): Promise<RedisClusterProcess> {
  const args = [
    '--cluster-enabled',
    'yes',
    '--cluster-node-timeout',
    '1000',
    '--cluster-config-file',
    'nodes.conf',
  ];
  const started: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) started.push(await startRedisServer(args));
    const clients = started.map(
      (p) => new Redis({ port: p.port, host: '127.0.0.1', maxRetriesPerRequest: 1 }),
    );
    try {
      const first = clients[0]!;
      for (const p of started.slice(1)) await first.cluster('MEET', '127.0.0.1', p.port);
      const per = Math.ceil(SLOTS / masters);
      for (let m = 0; m < masters; m++) {
        await clients[m]!.cluster('ADDSLOTSRANGE', m * per, Math.min(SLOTS, (m + 1) * per) - 1);
      }
      for (let attempt = 0; !(await clusterReady(first, masters)); attempt++) {
        if (attempt > 200) throw new Error('Redis Cluster did not become ready');
        await sleep(50);
      }
      for (let r = masters; r < started.length; r++) {
        const masterId = String(await clients[(r - masters) % masters]!.cluster('MYID'));
        for (let attempt = 0; ; attempt++) {
          try {
            await clients[r]!.cluster('REPLICATE', masterId);
            break;
          } catch (err) {
            if (attempt > 100) throw err;
            await sleep(50);
          }
        }
      }
      // Replicas must hold their master's data before anything may fail over to them.
      for (const replica of clients.slice(masters)) {
        for (
          let attempt = 0;
          !(await replica.info('replication')).includes('master_link_status:up');
          attempt++
        ) {
          if (attempt > 200) throw new Error('Redis Cluster replica did not sync');
          await sleep(50);
        }
      }
      // Every node must agree before clients connect.
      for (const client of clients) {
        for (let attempt = 0; !(await clusterReady(client, masters)); attempt++) {
          if (attempt > 200) throw new Error('Redis Cluster nodes did not agree');
          await sleep(50);
        }
      }
    } finally {
      for (const client of clients) client.disconnect();
    }
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
  const nodes = started.map((p) => ({ host: '127.0.0.1', port: p.port }));
  return {
    masters: started.slice(0, masters),
    replicas: started.slice(masters),
    nodes,
    connect: (options) => new Cluster(nodes.slice(0, masters), options),
    async stop() {
      await Promise.all(started.map((p) => p.stop()));
    },
  };
}
