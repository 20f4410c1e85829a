# bench_subscriptions [notify] [webhook]: exactly these subscriptions to
# Bench.* events (shared by run-delivery-bench.sh and
# run-delivery-callgrind.sh: the same append section)
bench_subscriptions() {
    $PSQL -c "SELECT headlessly.unsubscribe('bench_notify'), headlessly.unsubscribe('bench_webhook')" >/dev/null
    local s
    for s in "$@"; do
        case $s in
            notify) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_notify', 'Bench.*', notify => true)" >/dev/null ;;
            webhook) $PSQL -c "SELECT name FROM headlessly.subscribe('bench_webhook', 'Bench.*', url => 'http://127.0.0.1:9/')" >/dev/null ;;
        esac
    done
}
