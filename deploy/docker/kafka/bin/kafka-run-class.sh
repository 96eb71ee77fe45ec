#!/usr/bin/env bash
# Runs a Kafka class on the image's classpath, with the options variables of Kafka's own
# bin/kafka-run-class.sh (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_GC_LOG_OPTS,
# KAFKA_JMX_OPTS, KAFKA_LOG4J_OPTS, KAFKA_OPTS) and its defaults.
set -o nounset -o errexit
base_dir=$(dirname "$0")/..
if [[ "${1-}" == "-name" ]]; then shift 2; fi
if [[ "${1-}" == "-loggc" ]]; then shift; fi
[[ $# -ge 1 ]] || { echo "USAGE: $0 classname [opts]"; exit 1; }
class=$1
shift
heap=${KAFKA_HEAP_OPTS:--Xmx256M}
perf=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base_dir/config/tools-log4j2.yaml}
jmx=${KAFKA_JMX_OPTS-}
if [[ -n "${JMX_PORT-}" && -z "$jmx" ]]; then
  jmx="-Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false -Dcom.sun.management.jmxremote.port=$JMX_PORT"
fi
# shellcheck disable=SC2086 # the options variables are word lists, as in Kafka's script
exec java $heap $perf ${KAFKA_GC_LOG_OPTS-} $jmx $log4j -cp "$base_dir/libs/*" ${KAFKA_OPTS-} "$class" "$@"
