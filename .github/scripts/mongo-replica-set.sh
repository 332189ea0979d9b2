#!/usr/bin/env bash
# MongoDB 8 as a one-member replica set named rs0 on 127.0.0.1:27017, in a container named "mongodb".
# A service container cannot be given mongod's arguments (jobs.<id>.services takes no command), and only a
# replica set keeps the oplog that a point-in-time dump copies (mongodump --oplog), so it is started here.
# The member's host is 127.0.0.1:27017, which the host and containers on the host network reach.
set -euo pipefail
docker run -d --name mongodb -p 127.0.0.1:27017:27017 mongo:8.0 --replSet rs0 --bind_ip_all
shell() { docker exec mongodb mongosh --quiet --eval "$1"; }
for _ in $(seq 1 60); do shell 'db.runCommand({ ping: 1 }).ok' >/dev/null 2>&1 && break; sleep 1; done
shell 'rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "127.0.0.1:27017" }] })'
for _ in $(seq 1 60); do [ "$(shell 'db.hello().isWritablePrimary')" = true ] && exit 0; sleep 1; done
echo "the replica set rs0 has no primary after 60 s" >&2
docker logs mongodb >&2
exit 1
