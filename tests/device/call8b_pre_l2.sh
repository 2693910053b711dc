source tests/device/setup.sh
M=gpu__time_duration.sum,lts__t_bytes.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct
mkdir -p traces/gpu/c8
$T calibrate --out traces/gpu/c8/peaks.json 2>&1 | tail -4; cp traces/gpu/c8/peaks.json $OUT/peaks2.json
$TRACER_NCU --profile-from-start off --cache-control none --clock-control none --metrics $M --csv python3 tests/device/l2_copy_ncu.py > $OUT/l2_copy_ncu.csv 2>&1
grep -v '^==' $OUT/l2_copy_ncu.csv | grep -E "lts__t_bytes|duration|dram" | cut -c1-250 | head -8
