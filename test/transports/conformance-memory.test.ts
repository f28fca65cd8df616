import { connect } from '../../src/connect.ts';
import { conformance } from '../../src/testing/index.ts';

conformance({ name: 'memory://', connect: () => connect('memory://conformance?scanIntervalMs=10') });
