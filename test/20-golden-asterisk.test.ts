import { goldenSuite } from './support/goldenSuite.js';

/** Every Asterisk trace with every schema enabled (config/all-schemas.example.yaml). */
goldenSuite({
  pbx: 'Asterisk',
  dirs: ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth'],
  extension: '.ami',
  config: 'config/all-schemas.example.yaml',
  golden: 'test/golden/asterisk',
  atLeast: 20,
});
