#!/usr/bin/env python3
"""bench/report.py TSV OUTDIR SECONDS PRODUCERS REDIS_DEPTH STREAM_BATCH REPS:
the Markdown table and the gnuplot PNG of a bench/run.sh run."""
import csv
import datetime
import os
import platform
import subprocess
import sys

tsv, out, secs, producers, depth, batch, reps = sys.argv[1:8]
rows = list(csv.DictReader(open(tsv), delimiter='\t'))
names = {'redis': 'Redis PUBLISH (pipelined %s)' % depth,
         'notify': 'pg_notify, one per transaction',
         'durable': 'signalr_bp durable',
         'fast': 'signalr_bp fast'}


def find(setup, system, load):
    for r in rows:
        if (r['setup'], r['system'], r['load']) == (setup, system, load):
            return r
    return None


redis_max = float(find('local', 'redis', 'max')['delivered'])


def ms(us):
    return '%.2f' % (float(us) / 1000)


def kept_up(r):
    # an open-loop run whose consumers fell behind has no meaningful latency
    return float(r['delivered']) >= 0.9 * float(r['offered'])


def p99_cell(r):
    if not r:
        return ''
    if not kept_up(r):
        return 'falls behind (%s/s)' % format(int(float(r['delivered'])), ',')
    return ms(r['p99_us'])


cpu = 'unknown CPU'
try:
    for line in open('/proc/cpuinfo'):
        if line.startswith('model name'):
            cpu = line.split(':', 1)[1].strip()
            break
except OSError:
    pass
pg = subprocess.run(['psql', '-X', '-At', '-d', 'postgres', '-c', 'SHOW server_version'],
                    capture_output=True, text=True).stdout.strip() or 'PostgreSQL'
redis = subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()
redis = next((w.split('=')[1] for w in redis if w.startswith('v=')), '?')

md = []
md.append('Run of %s on %s, %d cores (%s), PostgreSQL %s, Redis %s: `bench/run.sh %s`.'
          % (datetime.date.today().isoformat(), platform.node() and 'Linux' or 'Linux',
             os.cpu_count(), cpu, pg.split()[0], redis, secs))
md.append('%s producer connections, 4 consumer connections each receiving every message, '
          '200-byte messages, %s s per run after 1 s of warm-up; maximum = median of %s '
          'closed-loop runs; latency from when a message was due to when a consumer had it.'
          % (producers, secs, reps))
md.append('')
md.append('| system | setup | max msgs/s per consumer | vs Redis | p50 / p99 ms at 25% | '
          'at 50% | at 90% of own max | p99 ms at 50% of Redis max | lost |')
md.append('|---|---|---:|---:|---|---|---|---:|---:|')
for setup in ('local', 'sync standby'):
    for system in ('redis', 'notify', 'durable', 'fast'):
        m = find(setup, system, 'max')
        if not m:
            continue
        lat = []
        for pct in ('25', '50', '90'):
            r = find(setup, system, pct + '% own max')
            if r and not kept_up(r):
                lat.append(p99_cell(r))
            else:
                lat.append('%s / %s' % (ms(r['p50_us']), ms(r['p99_us'])) if r else '')
        half = find(setup, system, '50% Redis max')
        if system == 'redis':
            half = find(setup, system, '50% own max')
        lost = sum(int(r['lost']) + int(r['dup']) for r in rows
                   if r['setup'] == setup and r['system'] == system)
        md.append('| %s | %s | %s | %.2fx | %s | %s | %s | %s | %d |' % (
            names[system], setup, format(int(float(m['delivered'])), ','),
            float(m['delivered']) / redis_max, lat[0], lat[1], lat[2],
            p99_cell(half), lost))
md.append('')
md.append('"lost" counts messages missing or repeated at any consumer over all runs of the system.')
open(os.path.join(out, 'pubsub.md'), 'w').write('\n'.join(md) + '\n')

# plot: maximum rates, and p99 against offered load
dat = os.path.join(out, 'pubsub-plot.dat')
with open(dat, 'w') as f:
    for system in ('redis', 'notify', 'durable', 'fast'):
        f.write('# %s\n' % system)
        pts = []
        for r in rows:
            if (r['setup'] == 'local' and r['system'] == system and r['load'] != 'max'
                    and kept_up(r)):
                pts.append((float(r['offered']), float(r['p99_us']) / 1000))
        for x, y in sorted(pts):
            f.write('%f %f\n' % (x, max(y, 0.01)))
        f.write('\n\n')
bars = os.path.join(out, 'pubsub-bars.dat')
with open(bars, 'w') as f:
    for system in ('redis', 'notify', 'durable', 'fast'):
        loc = find('local', system, 'max')
        syn = find('sync standby', system, 'max')
        f.write('"%s" %s %s\n' % (system, loc['delivered'], syn['delivered'] if syn else 0))
png = os.path.join(out, 'pubsub.png')
script = f'''
set terminal pngcairo size 1200,500 font ",10" noenhanced
set output "{png}"
set multiplot layout 1,2
set title "maximum delivered rate per consumer (msgs/s)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set key top right
plot "{bars}" using 2:xtic(1) title "local", "" using 3 title "with a synchronous standby"
set title "p99 end-to-end latency vs offered load"
set style data linespoints
set logscale y
set xlabel "offered msgs/s"
set ylabel "p99 ms"
set key top left
plot "{dat}" index 0 title "redis", "" index 1 title "notify", "" index 2 title "signalr_bp durable", "" index 3 title "signalr_bp fast"
unset multiplot
'''
subprocess.run(['gnuplot'], input=script, text=True, check=True)
os.remove(dat)
os.remove(bars)
print('\n'.join(md))
