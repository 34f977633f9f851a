import type { Transcript } from './fake-device.ts';

/**
 * Per-model fixture transcripts: what a device of that family prints, written for these tests from the
 * vendors' documented command output formats. `config` lines must appear in the result, `secret` must not
 * (scrubbed), `absent` lines are volatile or framing lines the model cuts.
 */
export interface ModelFixture {
  readonly transcript: Transcript;
  readonly expected: readonly string[];
  readonly secret: string;
  readonly absent: readonly string[];
  readonly enablePassword?: string;
}

const iosRun = [
  'Building configuration...',
  '',
  'Current configuration : 1234 bytes',
  '!',
  '! Last configuration change at 10:01:02 UTC Tue Dec 1 2026',
  'version 15.2',
  'hostname r1',
  'enable secret 5 $1$mERr$TOPSECRET1',
  'username admin privilege 15 secret 5 $1$xyz$TOPSECRET2',
  'snmp-server community TOPSECRET3 RO',
  ...Array.from({ length: 40 }, (_, i) => `interface GigabitEthernet0/${i}\n description port ${i}`),
  'end',
].join('\n');

export const FIXTURES: Record<string, ModelFixture> = {
  'cisco-ios': {
    transcript: {
      banner: '\n*** Authorised access only ***\n',
      prompt: 'r1>',
      enable: { password: 'en4ble', prompt: 'r1#' },
      pageEvery: 20,
      pager: ' --More-- ',
      commands: {
        'show version': 'Cisco IOS Software, C2960 Software, Version 15.2(7)E\nr1 uptime is 3 weeks, 2 days\nSystem returned to ROM by power-on\nProcessor board ID FOC1234',
        'show inventory': 'NAME: "1", DESCR: "WS-C2960-24TT-L"\nPID: WS-C2960-24TT-L  , VID: V02  , SN: FOC1234',
        'show running-config': iosRun,
      },
    },
    enablePassword: 'en4ble',
    expected: ['! Cisco IOS Software, C2960 Software, Version 15.2(7)E', '! PID: WS-C2960-24TT-L  , VID: V02  , SN: FOC1234', 'hostname r1', ' description port 39', 'enable secret 5 <secret hidden>', 'end'],
    secret: 'TOPSECRET',
    absent: ['uptime is', 'Building configuration', 'Current configuration', '--More--', 'r1#', 'show running-config'],
  },
  'cisco-nxos': {
    transcript: {
      prompt: 'n9k-1#',
      commands: {
        'show version': 'Cisco Nexus Operating System (NX-OS) Software\nKernel uptime is 12 day(s)\n  NXOS: version 9.3(8)',
        'show inventory': 'NAME: "Chassis",  DESCR: "Nexus9000 C93180YC-EX chassis"',
        'show running-config': '!Command: show running-config\n!Time: Tue Dec  1 10:00:00 2026\nversion 9.3(8) Bios:version 07.69\nhostname n9k-1\nsnmp-server community TOPSECRET group network-operator\nusername admin password 5 $5$TOPSECRET  role network-admin',
      },
    },
    expected: ['! Cisco Nexus Operating System (NX-OS) Software', 'hostname n9k-1', 'snmp-server community <secret hidden> group network-operator'],
    secret: 'TOPSECRET',
    absent: ['Kernel uptime', '!Time:'],
  },
  'juniper-junos': {
    transcript: {
      prompt: 'backup@mx1> ',
      commands: {
        'show version': 'Hostname: mx1\nModel: mx204\nJunos: 21.4R3.15',
        'show chassis hardware': 'Hardware inventory:\nItem             Version  Part number  Serial number     Description\nChassis                                JN1234            MX204',
        'show configuration | display set':
          '## Last commit: 2026-12-01 10:00:00 UTC by admin\nset version 21.4R3.15\nset system host-name mx1\nset system root-authentication encrypted-password "$6$TOPSECRET"\nset snmp community TOPSECRET authorization read-only',
      },
    },
    expected: ['# Model: mx204', 'set system host-name mx1', 'set system root-authentication encrypted-password "<secret hidden>"'],
    secret: 'TOPSECRET',
    absent: ['backup@mx1>'],
  },
  'arista-eos': {
    transcript: {
      prompt: 'leaf1>',
      enable: { password: 'en4ble', prompt: 'leaf1#' },
      commands: {
        'show version': 'Arista DCS-7050SX3-48YC8\nSoftware image version: 4.28.3M\nUptime: 5 weeks, 1 day\nFree memory: 5000000 kB',
        'show inventory': 'System information\n  Model: DCS-7050SX3-48YC8',
        'show running-config': '! Command: show running-config\n! device: leaf1 (DCS-7050SX3-48YC8, EOS-4.28.3M)\nhostname leaf1\nusername admin privilege 15 role network-admin secret sha512 $6$TOPSECRET\nend',
      },
    },
    enablePassword: 'en4ble',
    expected: ['! Software image version: 4.28.3M', 'hostname leaf1', 'username admin privilege 15 role network-admin secret sha512 <secret hidden>'],
    secret: 'TOPSECRET',
    absent: ['Uptime:', 'Free memory', '! Command: show running-config'],
  },
  'mikrotik-routeros': {
    transcript: {
      banner: '\n  MMM      MMM       KKK                          TTTTTTTTTTT      KKK\n  MikroTik RouterOS 7.12 (c) 1999-2023       https://www.mikrotik.com/\n',
      prompt: '\x1b[9999B[backup@hEX] > ',
      commands: {
        '/system resource print': '                   uptime: 1w2d3h\n                  version: 7.12 (stable)\n              free-memory: 190.2MiB\n                 cpu-load: 1%\n             architecture-name: mmips',
        '/export': '# 2026-12-01 10:00:00 by RouterOS 7.12\n# software id = ABCD-1234\n/interface bridge\nadd name=bridge\n/interface wireless security-profiles\nset [ find default=yes ] wpa2-pre-shared-key=TOPSECRET\n/system identity\nset name=hEX',
      },
    },
    expected: ['#                   version: 7.12 (stable)', 'add name=bridge', 'set [ find default=yes ] wpa2-pre-shared-key=<secret hidden>', 'set name=hEX'],
    secret: 'TOPSECRET',
    absent: ['uptime:', 'free-memory', '[backup@hEX]'],
  },
  fortios: {
    transcript: {
      prompt: 'FGT60E # ',
      pageEvery: 3,
      pager: '--More-- ',
      commands: {
        'get system status': 'Version: FortiGate-60E v7.2.5,build1517,230606 (GA.F)\nSerial-Number: FGT60E0000000000\nSystem time: Tue Dec  1 10:00:00 2026\nUptime: 10 days',
        'show full-configuration': '#config-version=FGT60E-7.2.5-FW-build1517-230606:opmode=0:vdom=0\n#conf_file_ver=123456789\nconfig system global\n    set hostname "FGT60E"\nend\nconfig system admin\n    edit "admin"\n        set password ENC SH2TOPSECRET\n    next\nend',
      },
    },
    expected: ['# Version: FortiGate-60E v7.2.5,build1517,230606 (GA.F)', '    set hostname "FGT60E"', '        set password ENC <secret hidden>'],
    secret: 'TOPSECRET',
    absent: ['System time:', 'Uptime:', '--More--', 'FGT60E #'],
  },
  'generic-exec': {
    transcript: {
      prompt: 'unused$ ',
      commands: {
        'cat /etc/config/*': "config system\n\toption hostname 'openwrt'\nconfig wifi-iface\n\toption key TOPSECRET\n",
      },
    },
    expected: ["\toption hostname 'openwrt'", "\toption key '<secret hidden>'"],
    secret: 'TOPSECRET',
    absent: ['cat /etc/config'],
  },
};
