# scripts/median.awk — the median of one metric over `go test -bench` output.
#
#   awk -v name=REGEXP -v unit=UNIT -f scripts/median.awk FILE
#
# Reads the benchmark lines whose name matches REGEXP, takes the value
# reported in UNIT on each, and prints their median (no decimals from 100 up,
# three significant digits below), or "-" when no line reports it. POSIX awk
# only (Debian's default awk is mawk): no asort, so an insertion sort.
$1 ~ name {
	for (i = 3; i < NF; i++)
		if ($(i + 1) == unit)
			v[++n] = $i + 0
}
END {
	if (n == 0) {
		printf "-"
		exit
	}
	for (i = 2; i <= n; i++) {
		x = v[i]
		for (j = i - 1; j >= 1 && v[j] > x; j--)
			v[j + 1] = v[j]
		v[j + 1] = x
	}
	m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	format = (m >= 100) ? "%.0f" : "%.3g"
	printf format, m
}
