# Instructions per request by callgrind, for scripts that source this file. Needs `$cost_bin`
# (the request_cost example), `$N1` and `$N2`. Each case runs N1 and N2 requests;
# (count(N2) - count(N1)) / (N2 - N1) is the cost of one request, start-up cancelled out.

count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file \
    "$cost_bin" "$1" "$2" 2>&1 | awk '/Collected/ {print $4}'
}

per_request() {
  local a b
  a=$(count "$1" "$N1"); b=$(count "$1" "$N2")
  echo $(( (b - a) / (N2 - N1) ))
}
