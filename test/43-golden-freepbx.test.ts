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
  // A hosted, multi-tenant PBX: endpoints NNNN-TT, extension_pattern names the extension (issue #12 item 5).
  configFor: { 'fpbx-tenant-ext': 'test/fixtures/asterisk-freepbx-synth/tenant.yaml' },
  golden: 'test/golden/asterisk-freepbx',
  atLeast: 10,
});
