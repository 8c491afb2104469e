# The source of the sort | uniq -c pipeline: 600 words, slowly.
for i in $(seq 1 600); do
	echo "w$((i * 7919 % 37))"
	sleep 0.004
done
