#!/usr/bin/env bash
# As Kafka's bin/kafka-server-start.sh: broker logging from config/log4j2.yaml, 1 GiB heap
# unless KAFKA_HEAP_OPTS says otherwise.
[[ $# -ge 1 ]] || { echo "USAGE: $0 server.properties [--override property=value]*"; exit 1; }
base_dir=$(dirname "$0")/..
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base_dir/config/log4j2.yaml}
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
exec "$base_dir/bin/kafka-run-class.sh" -name kafkaServer -loggc kafka.Kafka "$@"
