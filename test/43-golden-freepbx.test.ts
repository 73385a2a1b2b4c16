import { goldenSuite } from './support/goldenSuite.js';

/**
 * Every FreePBX-shaped trace (real captures and the synthetic ones for what they lack) with every
 * schema enabled and no `roles:` configured (config/freepbx.example.yaml): FreePBX out of the box.
 */
goldenSuite({
  pbx: 'FreePBX',
  dirs: ['test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'],
  extension: '.ami',
  config: 'config/freepbx.example.yaml',
  golden: 'test/golden/asterisk-freepbx',
  atLeast: 10,
});
