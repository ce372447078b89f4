#!/usr/bin/env python3
"""bench/signalr_report.py TSV OUTDIR SECONDS CONNECTIONS: the Markdown table
and the gnuplot PNG of a bench/signalr.sh run."""
import csv
import datetime
import os
import subprocess
import sys

tsv, out, secs, connections = sys.argv[1:5]
rows = list(csv.DictReader(open(tsv), delimiter='\t'))
systems = [('none', 'one server, no backplane'),
           ('redis', 'Redis backplane, 2 servers'),
           ('postgres', 'signalr_bp backplane, 2 servers'),
           ('postgres-queued', 'signalr_bp, sends complete when queued, 2 servers')]
KNEE_MS = 50.0
systems = [(k, n) for k, n in systems if any(r['system'] == k for r in rows)]


def cell(r):
    if not r:
        return 'not run'
    if int(r['received']) < int(r['expected']):
        return 'falls behind (%s lost)' % r['lost']
    return '%s / %s / %s / %s' % tuple('%.1f' % float(r[k])
                                       for k in ('p50_ms', 'p95_ms', 'p99_ms', 'max_ms'))


def knee(system):
    best = None
    for r in rows:
        if (r['system'] == system and r['direction'] == 'up'
                and int(r['received']) == int(r['expected']) and float(r['p99_ms']) < KNEE_MS):
            best = max(best or 0, int(r['rate']))
    return best


rates = []
for r in rows:
    if r['direction'] == 'up' and int(r['rate']) not in rates:
        rates.append(int(r['rate']))
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
            if l.startswith('model name')), 'unknown CPU')
md = ['Run of %s, %d cores (%s): `bench/signalr.sh %s`. %s client connections spread over '
      'the servers, one sender broadcasting 128-byte messages through the hub '
      '(`Clients.All.SendAsync`), each rate for %s s, up until a system no longer keeps up, '
      'then back down. Cells: p50 / p95 / p99 / max milliseconds from when a message was due '
      'to when a connection had it; every message is expected at every connection.'
      % (datetime.date.today().isoformat(), os.cpu_count(), cpu, secs, connections, secs), '']
md.append('| messages/s (deliveries/s) | ' + ' | '.join(name for _, name in systems) + ' |')
md.append('|---|' + '---|' * len(systems))
for direction in ('up', 'down'):
    seen = []
    for r in rows:
        if r['direction'] == direction and int(r['rate']) not in seen:
            seen.append(int(r['rate']))
    for rate in seen:
        cells = []
        for key, _ in systems:
            m = [r for r in rows if r['system'] == key and r['direction'] == direction
                 and int(r['rate']) == rate]
            cells.append(cell(m[0]) if m else '')
        md.append('| %s %d (%s) | %s |' % ('↑' if direction == 'up' else '↓', rate,
                                          format(rate * int(connections), ','), ' | '.join(cells)))
md.append('')
md.append('Knee (highest rate going up with p99 under %d ms and nothing missing): %s.' % (
    KNEE_MS, '; '.join('%s: %s' % (name, knee(key) or 'none') for key, name in systems)))
lost = {key: sum(int(r['lost']) for r in rows if r['system'] == key) for key, _ in systems}
md.append('Messages never delivered (10 s after the last send), all rates: %s.' % ', '.join(
    '%s: %d' % (name, lost[key]) for key, name in systems))
open(os.path.join(out, 'signalr.md'), 'w').write('\n'.join(md) + '\n')

dat = os.path.join(out, 'signalr-plot.dat')
with open(dat, 'w') as f:
    for key, _ in systems:
        for direction in ('up', 'down'):
            f.write('# %s %s\n' % (key, direction))
            for r in rows:
                if (r['system'] == key and r['direction'] == direction
                        and int(r['received']) == int(r['expected'])):
                    f.write('%s %s\n' % (r['rate'], max(float(r['p99_ms']), 0.01)))
            f.write('\n\n')
png = os.path.join(out, 'signalr.png')
plots = []
for i, (key, name) in enumerate(systems):
    plots.append('"%s" index %d title "%s, up" lc %d pt 7' % (dat, 2 * i, name, i + 1))
    plots.append('"%s" index %d title "%s, down" lc %d pt 6 dt 2' % (dat, 2 * i + 1, name, i + 1))
script = '''
set terminal pngcairo size 900,500 font ",10" noenhanced
set output "%s"
set title "SignalR broadcast to %s connections: p99 latency vs rate"
set xlabel "messages/s sent (each to every connection)"
set ylabel "p99 ms"
set logscale y
set key top left
set style data linespoints
plot %s
''' % (png, connections, ', '.join(plots))
subprocess.run(['gnuplot'], input=script, text=True, check=True)
os.remove(dat)
print('\n'.join(md))
