import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The three story runs time the host (p95s, alerts at scripted minutes on two shared
 * cores): the story on local processes runs first, then the Compose test (`docker compose
 * up` for real, its story inside the stack), then the cluster test (its story inside a
 * real Kubernetes; it reuses the Compose test's image build), before any other file has
 * started processes or stopped and restarted PostgreSQL and Redis. The rest keep
 * vitest's own order.
 */
const FIRST = ['/test/story.test.ts', '/test/compose-up.test.ts', '/test/k8s-cluster.test.ts'];

class StoryFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const i = FIRST.findIndex((suffix) => spec.moduleId.endsWith(suffix));
      return i === -1 ? FIRST.length : i;
    };
    return sorted
      .map((spec, index) => ({ spec, index }))
      .sort((a, b) => rank(a.spec) - rank(b.spec) || a.index - b.index)
      .map((e) => e.spec);
  }
}

export default defineConfig({
  test: {
    include: ['services/*/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // Services share one PostgreSQL and one Redis; files run one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    sequence: { sequencer: StoryFirst },
  },
});
