#!/usr/bin/env python3
"""bench/signalr_report.py TSV OUTDIR [--seconds S] [--group-size G]
[--default-mode M] [--command C] [--elapsed SECONDS]: the Markdown report
(knees, the targets against Redis, a table per pattern and topology, CPU) and
the gnuplot PNG of a bench/signalr.sh run."""
import argparse
import csv
import datetime
import os
import subprocess

KNEE_MS = 100.0     # the knee: highest rate with p99 under this and nothing lost
KNEE_RATIO = 1.5    # target: signalr_bp default's knee >= 1.5x Redis's
LATENCY_RATIO = 1.2  # target: p50 and p99 <= 1.2x Redis's below Redis's knee

ap = argparse.ArgumentParser()
ap.add_argument('tsv')
ap.add_argument('out')
ap.add_argument('--seconds', default='10')
ap.add_argument('--group-size', default='20')
ap.add_argument('--default-mode', default='')
ap.add_argument('--command', default='bench/signalr.sh')
ap.add_argument('--elapsed', type=int, default=0)
a = ap.parse_args()

rows = list(csv.DictReader(open(a.tsv), delimiter='\t'))
for r in rows:
    for k in ('connections', 'servers', 'rate', 'sent', 'expected', 'received', 'lost', 'duplicates'):
        r[k] = int(r[k])
    for k in ('p50_ms', 'p99_ms', 'max_ms', 'invoke_p50_ms', 'invoke_p99_ms', 'send_rate',
              'cpu_client', 'cpu_servers', 'cpu_store', 'cpu_other'):
        r[k] = float(r[k])


def system_name(key):
    if key == 'redis':
        return 'Redis'
    if key == 'postgres':
        return 'signalr_bp default' + (' (%s)' % a.default_mode if a.default_mode else '')
    return 'signalr_bp ' + key.split('-', 1)[1].capitalize()


systems = []
for r in rows:
    if r['system'] not in systems:
        systems.append(r['system'])
# Redis first, then signalr_bp's defaults, then its other modes as run
systems.sort(key=lambda s: {'redis': 0, 'postgres': 1}.get(s, 2))
scenarios = []   # (pattern, connections, servers)
for r in rows:
    s = (r['pattern'], r['connections'], r['servers'])
    if s not in scenarios:
        scenarios.append(s)
scenarios.sort(key=lambda s: (s[0] != 'broadcast', s[1], s[2]))
PATTERN = {'broadcast': 'Broadcast (`Clients.All.SendAsync`)',
           'group': 'Group send (`Clients.Group(g).SendAsync`)'}


def steps(sc, system, direction='up'):
    return [r for r in rows if (r['pattern'], r['connections'], r['servers']) == sc
            and r['system'] == system and r['direction'] == direction]


def good(r):
    return r['lost'] == 0 and r['received'] == r['expected'] and r['sent'] > 0 and r['p99_ms'] < KNEE_MS


def knee(sc, system):
    ok = [r['rate'] for r in steps(sc, system) if good(r)]
    return max(ok) if ok else None


def title(sc):
    pattern, conns, servers = sc
    extra = ''
    if pattern == 'group':
        extra = ', %d groups of %s' % (conns // int(a.group_size), a.group_size)
    return '%s, %d connections on %d servers%s' % (PATTERN[pattern], conns, servers, extra)


def cell(r):
    if r is None:
        return ''
    if r['sent'] == 0:
        return 'nothing sent'
    c = '%.1f / %.1f / %.1f' % (r['p50_ms'], r['p99_ms'], r['max_ms'])
    if r['lost']:
        c += ', **%d lost**' % r['lost']
    if r['duplicates']:
        c += ', %d duplicated' % r['duplicates']
    if r['sent'] < r['rate'] * int(a.seconds) and r['sent'] > 0:
        c += ' (sender fell behind: %d of %d sent)' % (r['sent'], r['rate'] * int(a.seconds))
    return c


def fmt_knee(k):
    return '%d/s' % k if k else 'none'


cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
            if l.startswith('model name')), 'unknown CPU')
md = []
md.append('Run of %s, %d cores (%s), `%s`%s. Hub servers are separate processes; '
          'WebSocket connections (skipNegotiation) are spread over them, each in one group '
          'of %s; one connection invokes a hub method that sends a 128-byte message and awaits '
          'each invocation (SignalR runs one invocation per connection at a time). Each rate '
          'runs %s s, going up until a system no longer keeps up (p99 over 1 s, a message '
          'lost, or the sender 5 s behind), then %s. Latency counts from when a message was '
          'due to when each addressed connection had it; a message still missing 10 s after '
          'the last send is lost.'
          % (datetime.date.today().isoformat(), os.cpu_count(), cpu, a.command,
             ' (%d min)' % round(a.elapsed / 60) if a.elapsed else '', a.group_size, a.seconds,
             'a few steps back down'))
md.append('')

# knees and the targets
md.append('Knee: the highest rate with p99 under %d ms and nothing lost.' % KNEE_MS)
md.append('')
md.append('| | ' + ' | '.join(system_name(s) for s in systems)
          + (' | default / Redis |' if 'redis' in systems and 'postgres' in systems else ' |'))
md.append('|---|' + '---|' * len(systems)
          + ('---|' if 'redis' in systems and 'postgres' in systems else ''))
verdicts = []
for sc in scenarios:
    ks = {s: knee(sc, s) for s in systems}
    line = '| %s, %d × %d | %s |' % (sc[0], sc[1], sc[2], ' | '.join(fmt_knee(ks[s]) for s in systems))
    if 'redis' in systems and 'postgres' in systems:
        kr, kp = ks['redis'], ks['postgres']
        if kr and kp:
            ratio = kp / kr
            line += ' %.2fx |' % ratio
        else:
            ratio = None
            line += ' – |'
        # p50 and p99 against Redis at every rate below Redis's knee
        worst = None
        for r in steps(sc, 'redis'):
            if kr is None or r['rate'] >= kr:
                continue
            p = [x for x in steps(sc, 'postgres') if x['rate'] == r['rate']]
            if not p:
                continue
            for q in ('p50_ms', 'p99_ms'):
                rr = p[0][q] / max(r[q], 0.001)
                if worst is None or rr > worst[0]:
                    worst = (rr, q[:3], r['rate'], p[0][q], r[q])
        knee_ok = ratio is not None and ratio >= KNEE_RATIO
        lat_ok = worst is not None and worst[0] <= LATENCY_RATIO
        verdicts.append('- %s, %d connections on %d servers: knee %s (%s vs %s: %s); latency below '
                        "Redis's knee %s%s." % (
                            sc[0], sc[1], sc[2], 'met' if knee_ok else '**not met**',
                            fmt_knee(kp), fmt_knee(kr), '%.2fx' % ratio if ratio else 'no ratio',
                            'met' if lat_ok else '**not met**',
                            (' (worst: %s %.2fx at %d/s, %.1f vs %.1f ms)' % (worst[1], worst[0], worst[2], worst[3], worst[4]))
                            if worst else ' (no rate below it to compare)'))
    md.append(line)
md.append('')
if verdicts:
    md.append('Targets (judged, not asserted): signalr_bp default knee >= %.1fx Redis\'s; p50 and p99 '
              '<= %.1fx Redis\'s at every rate below Redis\'s knee.' % (KNEE_RATIO, LATENCY_RATIO))
    md.append('')
    md.extend(verdicts)
    md.append('')
lost = {s: sum(r['lost'] for r in rows if r['system'] == s) for s in systems}
dup = {s: sum(r['duplicates'] for r in rows if r['system'] == s) for s in systems}
md.append('Messages lost over the whole run: %s. Duplicated: %s.' % (
    ', '.join('%s %d' % (system_name(s), lost[s]) for s in systems),
    ', '.join('%s %d' % (system_name(s), dup[s]) for s in systems)))
other = sorted(r['cpu_other'] for r in rows)
if other:
    md.append('Other processes of the machine used %.0f%% of one core in the median step, %.0f%% at most '
              '(a quiet machine: a few %%).' % (other[len(other) // 2], other[-1]))
md.append('')

# one table per scenario
for sc in scenarios:
    md.append('#### %s' % title(sc))
    md.append('')
    md.append('p50 / p99 / max ms; the sender\'s invocation p50 / p99 ms in the last columns.')
    md.append('')
    md.append('| messages/s (deliveries/s) | ' + ' | '.join(system_name(s) for s in systems)
              + ' | ' + ' | '.join('invoke, %s' % system_name(s) for s in systems) + ' |')
    md.append('|---|' + '---|' * (2 * len(systems)))
    for direction in ('up', 'down'):
        seen = []
        for r in rows:
            if ((r['pattern'], r['connections'], r['servers']) == sc and r['direction'] == direction
                    and r['rate'] not in seen):
                seen.append(r['rate'])
        for rate in seen:
            got = {}
            for s in systems:
                m = [r for r in steps(sc, s, direction) if r['rate'] == rate]
                got[s] = m[0] if m else None
            anyr = next(r for r in got.values() if r)
            per = anyr['expected'] / anyr['sent'] if anyr['sent'] else 0
            md.append('| %s %d (%s) | %s | %s |' % (
                '↑' if direction == 'up' else '↓', rate, format(int(round(rate * per)), ','),
                ' | '.join(cell(got[s]) for s in systems),
                ' | '.join('%.1f / %.1f' % (got[s]['invoke_p50_ms'], got[s]['invoke_p99_ms'])
                           if got[s] and got[s]['sent'] else '' for s in systems)))
    md.append('')
    # where the CPU goes, at the highest rate every system kept up with
    common = [r for r in sorted({x['rate'] for x in rows
                                 if (x['pattern'], x['connections'], x['servers']) == sc})
              if all(any(x['rate'] == r and good(x) for x in steps(sc, s)) for s in systems)]
    if common:
        rate = common[-1]
        parts = []
        for s in systems:
            r = [x for x in steps(sc, s) if x['rate'] == rate][0]
            parts.append('%s %.0f + %.0f + %.0f' % (system_name(s), r['cpu_servers'], r['cpu_store'],
                                                    r['cpu_client']))
        md.append('CPU at %d/s, %% of one core, hub servers + store + clients: %s.' % (rate, '; '.join(parts)))
        md.append('')
open(os.path.join(a.out, 'signalr.md'), 'w').write('\n'.join(md) + '\n')

# the PNG: one panel per scenario, p99 (solid) and p50 (dashed) against the rate, going up
dat = os.path.join(a.out, 'signalr-plot.dat')
blocks = {}
with open(dat, 'w') as f:
    i = 0
    for sc in scenarios:
        for s in systems:
            pts = [r for r in steps(sc, s) if r['sent'] and r['received'] == r['expected']]
            if not pts:
                continue
            f.write('# %s %s\n' % (sc, s))
            for r in pts:
                f.write('%d %s %s\n' % (r['rate'], max(r['p99_ms'], 0.01), max(r['p50_ms'], 0.01)))
            f.write('\n\n')
            blocks[(sc, s)] = i
            i += 1
cols = len({(sc[1], sc[2]) for sc in scenarios})
nrows = len({sc[0] for sc in scenarios})
png = os.path.join(a.out, 'signalr.png')
script = ['set terminal pngcairo size %d,%d font ",9" noenhanced' % (max(520 * cols, 900), 420 * nrows + 60),
          'set output "%s"' % png,
          'set multiplot layout %d,%d title "SignalR through a backplane: ms from due time to receipt vs messages/s\\n'
          'solid: p99, dashed: p50, dotted: the %d ms knee line"' % (nrows, cols, KNEE_MS),
          'set logscale xy', 'set key below', 'set style data linespoints',
          'set xlabel "messages/s"', 'set ylabel "ms"', 'set yrange [0.1:*]']
for sc in scenarios:
    plots = ['%g lc "gray30" dt 3 lw 2 notitle' % KNEE_MS]
    for j, s in enumerate(systems):
        if (sc, s) not in blocks:
            continue
        b = blocks[(sc, s)]
        plots.append('"%s" index %d using 1:2 title "%s" lc %d pt 7' % (dat, b, system_name(s), j + 1))
        plots.append('"%s" index %d using 1:3 notitle lc %d pt 6 dt 2' % (dat, b, j + 1))
    rates_here = [r['rate'] for r in rows if (r['pattern'], r['connections'], r['servers']) == sc]
    script.append('set xrange [%g:%g]' % (min(rates_here) / 1.3, max(rates_here) * 1.3))
    script.append('set title "%s, %d connections, %d servers"' % sc)
    script.append('plot ' + ', '.join(plots))
script.append('unset multiplot')
subprocess.run(['gnuplot'], input='\n'.join(script) + '\n', text=True, check=True)
os.remove(dat)
print('\n'.join(md))
