import { Cluster, Redis } from 'ioredis';
import { type RedisProcess, retryUntil, startRedisServer } from './redis-server.js';

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
      await retryUntil(
        'Redis Cluster',
        () => false,
        () => clusterReady(first, masters),
      );
      for (let r = masters; r < started.length; r++) {
        const masterId = String(await clients[(r - masters) % masters]!.cluster('MYID'));
        await retryUntil(
          'CLUSTER REPLICATE',
          () => false,
          async () => {
            await clients[r]!.cluster('REPLICATE', masterId);
            return true;
          },
        );
      }
      // Replicas must hold their master's data before anything may fail over to them.
      for (const replica of clients.slice(masters)) {
        const synced = async () => (await replica.info('replication')).includes('master_link_status:up');
        await retryUntil('Redis Cluster replica sync', () => false, synced);
      }
      // Every node must agree before clients connect.
      for (const client of clients)
        await retryUntil(
          'Redis Cluster agreement',
          () => false,
          () => clusterReady(client, masters),
        );
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
