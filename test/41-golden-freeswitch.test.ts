import { goldenSuite } from './support/goldenSuite.js';

/**
 * Every FreeSWITCH trace with every schema enabled: config/freeswitch-lab.example.yaml is
 * all-schemas.example.yaml (same endpoints, names, people) with the FreeSWITCH lab's PBX and ring
 * groups (`830@default`).
 */
goldenSuite({
  pbx: 'FreeSWITCH',
  dirs: ['test/fixtures/freeswitch', 'test/fixtures/freeswitch-synth'],
  extension: '.esl',
  config: 'config/freeswitch-lab.example.yaml',
  golden: 'test/golden/freeswitch',
  atLeast: 21,
});
