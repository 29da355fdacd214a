// The example specs behind the documented files in systemd/ and launchd/ (a test renders these
// and compares them with the files, so the documentation cannot drift from `service print`).
import { EXAMPLE_SPEC, type ServiceSpec } from './service-files.js';

/** File name in the repository -> the spec it documents. */
export const DOCUMENTED_SERVICES: ReadonlyArray<{ file: string; kind: 'systemd' | 'launchd'; spec: ServiceSpec }> = [
  { file: 'systemd/wa-supervisor.service', kind: 'systemd', spec: { ...EXAMPLE_SPEC, scope: 'user', config: '/home/alice/.config/wa-supervisor/config.json' } },
  { file: 'systemd/wa-supervisor.system.service', kind: 'systemd', spec: { ...EXAMPLE_SPEC, scope: 'system', config: '/etc/wa-supervisor/config.json', runAs: 'wa-supervisor' } },
  {
    file: 'launchd/com.wa-supervisor.daemon.plist',
    kind: 'launchd',
    spec: { ...EXAMPLE_SPEC, scope: 'user', config: '/Users/alice/Library/Application Support/wa-supervisor/config.json', logDir: '/Users/alice/Library/Logs/wa-supervisor' },
  },
  {
    file: 'launchd/com.wa-supervisor.daemon.system.plist',
    kind: 'launchd',
    spec: { ...EXAMPLE_SPEC, scope: 'system', config: '/etc/wa-supervisor/config.json', runAs: 'wa-supervisor', logDir: '/var/log/wa-supervisor' },
  },
];
