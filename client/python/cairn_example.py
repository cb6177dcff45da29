#!/usr/bin/python3
"""A small Cairn client in Python: mutual TLS, the cluster map, routing,
put, get and list, and queries.

Run it with Debian's interpreter, /usr/bin/python3, which sees the
python3-thrift and python3-xxhash packages (scripts/install-deps.sh):

  /usr/bin/python3 client/python/cairn_example.py \
      --gen-py build/client/python/gen-py \
      --meta 127.0.0.1:7000 --ca ca.crt --cert alice.crt --key alice.key \
      --collection docs

The Thrift code comes from thrift/*.thrift (`thrift --gen py`, built by the
CMake target cairn_python into <build>/client/python/gen-py).

Routing: a document's partition is the top log2(P) bits of XXH3-64 over
`collection NUL id` (common/partitioning.h); the request goes to the
partition's primary, replicas[0] in the map. xxhash's xxh3_64 (python3-xxhash,
Debian 12) computes the same hash as the C++ side. With --route any the
example sends every request to one chunk server instead and lets it forward
(chunk servers forward requests for partitions they do not hold).

Queries: with --query 'TEXT' the example runs one query
(docs/query-language.md) over --collection instead: ChunkService.Query on
every partition of the map, then the partitions' sorted rows merged in the
query's order (its sort keys, then _id) and cut at its limit, printed as
JSON Lines.

TLS: python3-thrift's TSSLSocket over an ssl.SSLContext holding the client
certificate and key (TLS 1.3 only, like every Cairn connection).
Identity: the servers are checked the way Cairn checks them: the chain must
verify against the cluster CA and the certificate's common name must be a
node identity ("node:<name>"); host names are not compared (nodes are named
by their certificate, see common/tls.h).
"""

import argparse
import functools
import heapq
import json
import os
import random
import ssl
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--meta", required=True, help="metaservers: host:port[,host:port...]")
    p.add_argument("--ca", required=True, help="cluster CA certificate (PEM)")
    p.add_argument("--cert", required=True, help="this client's certificate (PEM)")
    p.add_argument("--key", required=True, help="this client's private key (PEM)")
    p.add_argument("--collection", default="docs")
    p.add_argument("--count", type=int, default=5, help="documents to put")
    p.add_argument("--gen-py", default=os.environ.get("CAIRN_GEN_PY", ""),
                   help="directory of the generated Thrift Python code")
    p.add_argument("--route", choices=["direct", "any"], default="direct")
    p.add_argument("--query", help="run this query over --collection (JSON Lines out)")
    p.add_argument("--time-limit", type=int, default=0, help="query: ms per partition")
    return p.parse_args()


ARGS = parse_args()
if ARGS.gen_py:
    sys.path.insert(0, ARGS.gen_py)

import xxhash  # noqa: E402  (python3-xxhash)
from thrift.protocol import TBinaryProtocol  # noqa: E402
from thrift.transport import TSSLSocket, TTransport  # noqa: E402
from cairn_rpc.base.ttypes import CairnError, ErrorCode, RequestId  # noqa: E402
from cairn_rpc.chunk import ChunkService  # noqa: E402
from cairn_rpc.chunk.ttypes import GetRequest, ListRequest, PutRequest, QueryRequest  # noqa: E402
from cairn_rpc.meta import MetaService  # noqa: E402

BLOCK_BYTES = 1 << 20  # a Get returns at most one block


def check_node_identity(cert, hostname):
    """Cairn's peer check: the CA verified the chain; the name must be a node."""
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value.startswith("node:"):
                return
    raise ssl.CertificateError("peer %s is not a Cairn node" % hostname)


def tls_context():
    """TLS 1.3 only, our certificate and key, the peer verified against the
    cluster CA only; no host name check (check_node_identity instead)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ARGS.ca)
    ctx.load_cert_chain(certfile=ARGS.cert, keyfile=ARGS.key)
    return ctx


class Connection:
    """One Thrift client over mutual TLS (buffered transport, binary protocol:
    what every Cairn server speaks)."""

    def __init__(self, service, host, port):
        sock = TSSLSocket.TSSLSocket(host, port, ssl_context=tls_context(),
                                     validate_callback=check_node_identity)
        sock.setTimeout(30000)
        self.transport = TTransport.TBufferedTransport(sock, 64 * 1024)
        self.client = service.Client(TBinaryProtocol.TBinaryProtocol(self.transport))
        self.transport.open()

    def close(self):
        self.transport.close()


def partition_of(collection, doc_id, partition_count):
    h = xxhash.xxh3_64_intdigest(collection.encode() + b"\0" + doc_id.encode())
    bits = partition_count.bit_length() - 1  # P is a power of two
    return h >> (64 - bits) if bits > 0 else 0


class Cluster:
    def __init__(self):
        self.metaservers = []
        for hp in ARGS.meta.split(","):
            host, port = hp.rsplit(":", 1)
            self.metaservers.append((host, int(port)))
        self.conns = {}
        self.map = None
        self.client_id = (random.getrandbits(63), random.getrandbits(63))
        self.seq = 0
        self.refresh()

    def refresh(self):
        """GetMap from the leader: a follower answers UNAVAILABLE, try the next."""
        last = None
        for host, port in self.metaservers:
            try:
                conn = Connection(MetaService, host, port)
                try:
                    self.map = conn.client.GetMap(0)
                    return
                finally:
                    conn.close()
            except (CairnError, TTransport.TTransportException) as e:
                last = e
        raise SystemExit("cannot get the cluster map: %s" % last)

    def node(self, node_id):
        for n in self.map.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def chunk(self, partition):
        """(client, epoch) for the partition's primary, or any node with --route any."""
        part = self.map.partitions[partition]
        if not part.replicas:
            raise SystemExit("partition %d is not placed yet" % partition)
        node = self.node(part.replicas[0]) if ARGS.route == "direct" else self.map.nodes[0]
        key = (node.host, node.port)
        if key not in self.conns:
            self.conns[key] = Connection(ChunkService, node.host, node.port)
        return self.conns[key].client, part.epoch

    def call(self, partition, fn):
        """Runs fn(client, epoch); on NOT_PRIMARY / STALE_EPOCH refreshes the map
        and tries again (a mutation keeps its request id)."""
        for attempt in range(5):
            client, epoch = self.chunk(partition)
            try:
                return fn(client, epoch)
            except CairnError as e:
                if e.code not in (ErrorCode.NOT_PRIMARY, ErrorCode.STALE_EPOCH,
                                  ErrorCode.UNAVAILABLE) or attempt == 4:
                    raise
                self.refresh()

    def request_id(self):
        self.seq += 1
        return RequestId(client_hi=self.client_id[0], client_lo=self.client_id[1], seq=self.seq)

    def put(self, collection, doc_id, body):
        """Small bodies only (at most one block, sent inline)."""
        assert len(body) <= BLOCK_BYTES
        p = partition_of(collection, doc_id, self.map.partition_count)
        rid = self.request_id()

        def fn(client, epoch):
            return client.Put(PutRequest(
                partition=p, epoch=epoch, request_id=rid, collection=collection, id=doc_id,
                expected_version=0, size=len(body), body_hash=signed(xxhash.xxh3_64_intdigest(body)),
                body=body))
        return self.call(p, fn)

    def get(self, collection, doc_id):
        """The whole body, block by block, pinned to one version, hash checked."""
        p = partition_of(collection, doc_id, self.map.partition_count)
        out, version, meta = bytearray(), None, None
        while meta is None or len(out) < meta.size:
            req = GetRequest(partition=p, collection=collection, id=doc_id, offset=len(out),
                             length=BLOCK_BYTES, if_version=version)

            def fn(client, epoch):
                req.epoch = epoch
                return client.Get(req)
            r = self.call(p, fn)
            meta, version = r.meta, r.meta.version
            if not r.data and len(out) < meta.size:
                raise SystemExit("short read of %s/%s" % (collection, doc_id))
            out += r.data
        if signed(xxhash.xxh3_64_intdigest(bytes(out))) != meta.body_hash:
            raise SystemExit("%s/%s: body hash mismatch" % (collection, doc_id))
        return bytes(out), meta

    def list(self, collection, page=100):
        """Every id of the collection: each partition paged, merged by id."""
        ids = []
        for p in range(self.map.partition_count):
            after = ""
            while True:
                def fn(client, epoch):
                    return client.List(ListRequest(partition=p, epoch=epoch, collection=collection,
                                                   after_id=after, limit=page))
                r = self.call(p, fn)
                ids += [m.id for m in r.items]
                if not r.more or not r.items:
                    break
                after = r.items[-1].id
        return sorted(ids)


    def query(self, collection, text, time_limit_ms=0):
        """Rows (id, json) of a query over every partition, merged."""
        desc, limit = sort_and_limit(text)
        runs = []
        for p in range(self.map.partition_count):
            def fn(client, epoch):
                req = QueryRequest(partition=p, epoch=epoch, collection=collection, query=text)
                if time_limit_ms > 0:
                    req.time_limit_ms = time_limit_ms
                return client.Query(req)
            r = self.call(p, fn)
            runs.append([(json.loads(row.sort_keys) if row.sort_keys else [], row.id, row.json)
                         for row in r.rows])

        def order(a, b):
            for i, d in enumerate(desc):
                c = compare_key(a[0][i], b[0][i])
                if c:
                    return -c if d else c
            return (a[1] > b[1]) - (a[1] < b[1])  # ties by id, bytewise
        merged = heapq.merge(*runs, key=functools.cmp_to_key(order))
        out = []
        for row in merged:
            if limit is not None and len(out) >= limit:
                break
            out.append((row[1], row[2]))
        return out


def options_of(text):
    """The text after the first '?' outside string literals and `quoted` keys."""
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif quote == "`":
            if c == "`":
                quote = None
        elif c in ('"', "`"):
            quote = c
        elif c == "?":
            return text[i + 1:]
        i += 1
    return ""


def sort_and_limit(text):
    """(descending flag per sort key, limit or None) from the query's options.
    The server has parsed the query already; this only reads what the merge needs."""
    desc, limit = [], None
    for opt in options_of(text).split("&"):
        name, _, value = opt.strip().partition("=")
        name, value = name.strip(), value.strip()
        if name == "limit":
            limit = int(value)
        elif name == "sort":
            desc = [k.strip().startswith("-") for k in value.split(",")]
    return desc, limit


def rank(v):
    """Type classes in the order of docs/query-language.md."""
    if v is None:
        return 0
    if v is False:
        return 1
    if v is True:
        return 2
    if isinstance(v, (int, float)):
        return 3
    if isinstance(v, str):
        return 4
    if isinstance(v, list):
        return 5
    return 6


def compare_value(a, b):
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return (ra > rb) - (ra < rb)
    if ra == 4:
        a, b = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    if ra in (3, 4):  # Python compares int and float exactly
        return (a > b) - (a < b)
    if ra == 5:
        for x, y in zip(a, b):
            c = compare_value(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 6:
        return compare_value([[k, a[k]] for k in sorted(a, key=lambda k: k.encode())],
                             [[k, b[k]] for k in sorted(b, key=lambda k: k.encode())])
    return 0


def compare_key(a, b):
    """A sort key on the wire: [] (missing, first) or [value]."""
    if not a or not b:
        return (len(a) > len(b)) - (len(a) < len(b))
    return compare_value(a[0], b[0])


def signed(u64):
    """Thrift i64 fields are signed."""
    return u64 - (1 << 64) if u64 >= (1 << 63) else u64


def main():
    cluster = Cluster()
    m = cluster.map
    if ARGS.query is not None:
        try:
            rows = cluster.query(ARGS.collection, ARGS.query, ARGS.time_limit)
        except CairnError as e:
            sys.stderr.write("query: %s\n" % e.message)
            sys.exit(65 if e.code in (ErrorCode.INVALID_ARGUMENT, ErrorCode.TOO_LARGE) else 1)
        for _, row in rows:
            sys.stdout.write(row + "\n")
        return
    print("map version %d: %d partitions, %d nodes" % (m.version, m.partition_count, len(m.nodes)))
    names = ["example-%d" % i for i in range(ARGS.count)]
    for name in names:
        body = ("{\"name\": \"%s\", \"n\": %d}" % (name, len(name))).encode()
        meta = cluster.put(ARGS.collection, name, body)
        print("put %s/%s: version %d, partition %d" % (ARGS.collection, name, meta.version,
                                                        meta.partition))
        got, _ = cluster.get(ARGS.collection, name)
        if got != body:
            raise SystemExit("get %s/%s returned other bytes" % (ARGS.collection, name))
    listed = cluster.list(ARGS.collection)
    missing = [n for n in names if n not in listed]
    if missing:
        raise SystemExit("list is missing %s" % missing)
    print("list %s: %d documents: %s" % (ARGS.collection, len(listed), " ".join(listed)))
    print("ok")


if __name__ == "__main__":
    main()
