/**
 * Alert definitions checked against Coralogix's own Alerts API v3 types: the prost code in
 * their published Rust SDK (crates.io `cx-api`, downloaded once into the tools cache and
 * verified against the crates.io index's checksum).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CX_API_VERSION,
  coralogixAlertsSource,
  crateChecksumFromIndex,
  type ProtoModel,
  parseProstModule,
  presentOneof,
  validateProto3Json,
  verifySha256,
} from '../packages/coralogix/src/cx-schema.js';

const CACHE = path.join(os.homedir(), '.cache/black-friday-lab/tools', `cx-api-${CX_API_VERSION}`);
const CRATE = path.join(CACHE, `cx-api-${CX_API_VERSION}.crate`);

const definition = () => ({
  name: 'Checkout errors',
  priority: 'ALERT_DEF_PRIORITY_P1',
  type: 'ALERT_DEF_TYPE_METRIC_THRESHOLD',
  metricThreshold: {
    metricFilter: { promql: 'sum(rate(errors_total[5m])) / sum(rate(calls_total[5m]))' },
    rules: [
      {
        condition: {
          threshold: 0.1,
          forOverPct: 100,
          ofTheLast: { metricTimeWindowSpecificValue: 'METRIC_TIME_WINDOW_VALUE_MINUTES_5' },
          conditionType: 'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_UNSPECIFIED',
        },
        override: { priority: 'ALERT_DEF_PRIORITY_P1' },
      },
    ],
    missingValues: { replaceWithZero: true },
  },
  entityLabels: { a: 'b' },
  incidentsSettings: { minutes: 10, notifyOn: 'NOTIFY_ON_TRIGGERED_AND_RESOLVED' },
});
type Definition = ReturnType<typeof definition>;

/** A copy of the example with one change made to it. */
const variant = (change: (d: Definition & Record<string, unknown>) => void) => {
  const d = definition() as Definition & Record<string, unknown>;
  change(d);
  return d;
};

/** A copy of `bytes` with one byte changed. */
const flipByte = (bytes: Buffer, at: number) => {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0xff;
  return copy;
};

const CONDITION = 'metricThreshold.rules[0].condition';

describe(`Coralogix Alerts API v3 (cx-api ${CX_API_VERSION})`, () => {
  let model: ProtoModel;

  beforeAll(async () => {
    model = parseProstModule(await coralogixAlertsSource());
  }, 120_000);

  it('reads the messages and enums of the alert definition', () => {
    for (const name of [
      'AlertDefProperties',
      'MetricThresholdType',
      'MetricThresholdCondition',
      'MetricTimeWindow',
      'MetricMissingValues',
    ]) {
      expect(model.messages.has(name), name).toBe(true);
    }
    const names = (e: string) => model.enums.get(e)?.values.map((v) => v.name);
    expect(names('AlertDefPriority')).toEqual([
      'ALERT_DEF_PRIORITY_P5_OR_UNSPECIFIED',
      'ALERT_DEF_PRIORITY_P4',
      'ALERT_DEF_PRIORITY_P3',
      'ALERT_DEF_PRIORITY_P2',
      'ALERT_DEF_PRIORITY_P1',
    ]);
    expect(names('AlertDefType')).toContain('ALERT_DEF_TYPE_METRIC_THRESHOLD');
    expect(names('MetricTimeWindowValue')).toContain('METRIC_TIME_WINDOW_VALUE_MINUTES_5');
    expect(names('MetricThresholdConditionType')).toContain('METRIC_THRESHOLD_CONDITION_TYPE_LESS_THAN');

    const properties = model.messages.get('AlertDefProperties')!;
    const field = (name: string) => properties.fields.find((f) => f.jsonName === name);
    expect(field('priority')).toMatchObject({ tag: 4, label: 'singular', type: { kind: 'enum', enum: 'AlertDefPriority' } });
    expect(field('name')).toMatchObject({ tag: 1, type: { kind: 'scalar', scalar: 'string', wrapper: true } });
    expect(field('entityLabels')).toMatchObject({ tag: 10, label: 'map', mapKey: 'string', type: { kind: 'scalar', scalar: 'string' } });
    expect(field('groupByKeys')).toMatchObject({ label: 'repeated', type: { kind: 'scalar', scalar: 'string', wrapper: true } });
    expect(field('metricThreshold')).toMatchObject({
      tag: 106,
      oneof: 'type_definition',
      type: { kind: 'message', message: 'MetricThresholdType' },
    });
    const window = model.messages.get('MetricTimeWindow')!.fields.map(({ jsonName, oneof, type }) => ({ jsonName, oneof, type }));
    expect(window).toEqual([
      { jsonName: 'metricTimeWindowSpecificValue', oneof: 'type', type: { kind: 'enum', enum: 'MetricTimeWindowValue' } },
      { jsonName: 'metricTimeWindowDynamicDuration', oneof: 'type', type: { kind: 'scalar', scalar: 'string', wrapper: true } },
    ]);
  });

  it('reports the types it cannot follow instead of accepting them', () => {
    // Only the timestamps of the API's own bookkeeping (well-known types from prost-wkt) are outside this file.
    expect(new Set(model.unresolved.map((u) => u.rust))).toEqual(new Set(['::prost_wkt_types::Timestamp']));
    expect(model.unresolved.map((u) => u.at)).toContain('AlertDef.created_time');
    expect(validateProto3Json(model, 'AlertDef', { createdTime: '2024-11-29T00:00:00Z' })).toEqual([
      'createdTime: cannot check: its type ::prost_wkt_types::Timestamp is not in the model',
    ]);
  });

  it('accepts the example metric threshold definition', () => {
    expect(validateProto3Json(model, 'AlertDefProperties', definition())).toEqual([]);
    expect(presentOneof(model, 'AlertDefProperties', 'type_definition', definition())).toBe('metricThreshold');
  });

  it.each<[string, (d: Definition & Record<string, unknown>) => void, string]>([
    [
      'an unknown top-level field',
      (d) => {
        d.severity = 'high';
      },
      'severity: unknown field (AlertDefProperties has no field "severity")',
    ],
    [
      'a misspelt enum value',
      (d) => {
        d.metricThreshold.rules[0]!.condition.conditionType = 'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THEN';
      },
      `${CONDITION}.conditionType: "METRIC_THRESHOLD_CONDITION_TYPE_MORE_THEN" is not one of ` +
        'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_UNSPECIFIED, METRIC_THRESHOLD_CONDITION_TYPE_LESS_THAN, ' +
        'METRIC_THRESHOLD_CONDITION_TYPE_MORE_THAN_OR_EQUALS, METRIC_THRESHOLD_CONDITION_TYPE_LESS_THAN_OR_EQUALS',
    ],
    [
      'a string for the threshold (a double)',
      (d) => {
        (d.metricThreshold.rules[0]!.condition as Record<string, unknown>).threshold = 'high';
      },
      `${CONDITION}.threshold: expected a number (double), got string "high"`,
    ],
    [
      'two members of the time window oneof',
      (d) => {
        (d.metricThreshold.rules[0]!.condition.ofTheLast as Record<string, unknown>).metricTimeWindowDynamicDuration = '5m';
      },
      `${CONDITION}.ofTheLast: more than one member of oneof "type" is set: metricTimeWindowSpecificValue, metricTimeWindowDynamicDuration`,
    ],
    [
      'rules as an object',
      (d) => {
        (d.metricThreshold as Record<string, unknown>).rules = d.metricThreshold.rules[0];
      },
      'metricThreshold.rules: expected an array (repeated MetricThresholdRule), got an object',
    ],
    [
      'an entity label with a number value',
      (d) => {
        (d.entityLabels as Record<string, unknown>).a = 1;
      },
      'entityLabels.a: expected a string, got number 1',
    ],
  ])('rejects %s', (_, change, problem) => {
    expect(validateProto3Json(model, 'AlertDefProperties', variant(change))).toEqual([problem]);
  });
});

describe('the crate checksum', () => {
  const dirs: string[] = [];
  // The cached crate is what these tests corrupt copies of.
  beforeAll(() => coralogixAlertsSource(), 120_000);
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('is taken from the index line of the pinned version', () => {
    const index = [
      `{"name":"cx-api","vers":"1.9.1","cksum":"${'a'.repeat(64)}"}`,
      `{"name":"cx-api","vers":"1.9.2","cksum":"${'b'.repeat(64)}"}`,
    ];
    expect(crateChecksumFromIndex(index.join('\n'), '1.9.2')).toBe('b'.repeat(64));
    expect(() => crateChecksumFromIndex(index[0]!, '1.9.2')).toThrow('the crates.io index has no cx-api 1.9.2');
  });

  it('refuses bytes that do not hash to it', () => {
    const good = readFileSync(CRATE);
    const sum = readFileSync(`${CRATE}.sha256`, 'utf8').trim();
    expect(() => verifySha256(good, sum, 'cx-api.crate')).not.toThrow();
    const bad = flipByte(good, good.length >> 1);
    expect(() => verifySha256(bad, sum, 'cx-api.crate')).toThrow(`sha256 mismatch for cx-api.crate: expected ${sum}`);
  });

  it('refuses a corrupted cached crate, naming what to delete', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cx-api-'));
    dirs.push(dir);
    const copy = path.join(dir, path.basename(CRATE));
    copyFileSync(`${CRATE}.sha256`, `${copy}.sha256`);
    writeFileSync(copy, flipByte(readFileSync(CRATE), 100));
    const error = await coralogixAlertsSource(dir).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^sha256 mismatch for /);
    expect(error?.message).toContain(`Delete ${dir} to download it again`);
  });
});
