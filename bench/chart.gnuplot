# chart.gnuplot: bench_contexts' figures as clustered bars on a log scale,
# mitogen-c beside Mitogen and the OS floor, with DESIGN.md's target marked.
#
# bench_contexts and bench_files write the data and run this; by hand:
#   gnuplot -e "datafile='figures.tsv'; outfile='docs/bench-contexts.png'" bench/chart.gnuplot
# Data: one metric per line, tab-separated: label, ours, Mitogen, floor,
# target; "-" where a figure is missing.  Each metric keeps its own unit (the
# label names it), which is why the scale is logarithmic: the bars compare
# within a cluster, not across them.

if (!exists("datafile")) datafile = 'figures.tsv'
if (!exists("outfile")) outfile = 'bench-contexts.png'
if (!exists("refname")) refname = 'Mitogen 0.3.3'
# bench_files and bench_cli set these: the files' clusters share one unit
# (MiB/s); the tool's third bar is the fastest other tool, not a floor.
if (!exists("charttitle")) charttitle = "mitogen-c vs ".refname." and the OS floor (log scale; each cluster in its own unit)"
if (!exists("floorname")) floorname = 'OS floor'
if (!exists("targetname")) targetname = "target (DESIGN.md)"
if (!exists("yname")) yname = "value in the unit under each cluster"
if (!exists("ymin")) ymin = 0.05
if (!exists("keypos")) keypos = "top left"

set terminal pngcairo size 1500,720 font "DejaVu Sans,11" background rgb "white"
set output outfile
set datafile separator "\t"
set datafile missing "-"

set title charttitle font ",13"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#333333"
set boxwidth 0.95
set logscale y 10
set format y "10^{%L}"
set yrange [ymin:*]
set grid ytics mytics lc rgb "#dddddd"
eval "set key ".keypos." box opaque"
set xtics noenhanced scale 0 font ",10"
set ylabel yname
set bmargin 5

# Three bars per cluster with gap 1: centres at -0.25, 0 and +0.25.
w = 0.25
num(x) = (x != x) ? "" : (x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x))

# The target column is never missing, so it counts the clusters.
stats datafile using 5 nooutput
set xrange [-0.6:STATS_records - 0.4]

plot datafile using 2:xtic(1) title "mitogen-c" lc rgb "#1f77b4", \
     '' using 3 title refname lc rgb "#ff7f0e", \
     '' using 4 title floorname lc rgb "#a0a0a0", \
     '' using ($0):5 with points pt 9 ps 2.2 lc rgb "#d62728" title targetname, \
     '' using ($0 - w):2:(num($2)) with labels offset 0,0.8 font ",9" notitle, \
     '' using ($0):3:(num($3)) with labels offset 0,0.8 font ",9" notitle, \
     '' using ($0 + w):4:(num($4)) with labels offset 0,0.8 font ",9" notitle
