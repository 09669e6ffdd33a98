//! One suite, every sink: what delivery relies on (a put replaces, keys nest, heads and whole
//! objects read back, listing by prefix, unsafe keys are refused, large objects and concurrent puts
//! work) holds for the local directory and for S3 (a real S3-compatible server on 127.0.0.1).

mod support;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use weir_delivery::sink::MULTIPART_THRESHOLD;
use weir_delivery::{LocalDirSink, S3Sink, Sink};

/// A sink under test and a way to see everything it stored, independently of the sink.
trait Backend {
    fn sink(&self) -> Arc<dyn Sink>;
    /// Every object: key (relative to the sink's root or prefix) → body.
    fn objects(&self) -> BTreeMap<String, Vec<u8>>;
    fn expected_location(&self) -> String;
    /// Whether the object at `key` was stored by a multipart upload, where the backend has those.
    fn stored_in_parts(&self, _key: &str) -> Option<bool> {
        None
    }
}

struct Local {
    dir: tempfile::TempDir,
    sink: Arc<LocalDirSink>,
}

impl Local {
    fn new() -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Arc::new(LocalDirSink::open(dir.path().join("bucket")).expect("open"));
        Local { dir, sink }
    }
}

impl Backend for Local {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    let key = path
                        .strip_prefix(base)
                        .expect("under base")
                        .to_string_lossy()
                        .into_owned();
                    out.insert(key, std::fs::read(&path).expect("read"));
                }
            }
        }
        let mut out = BTreeMap::new();
        let root = self.dir.path().join("bucket");
        walk(&root, &root, &mut out);
        out
    }

    fn expected_location(&self) -> String {
        self.dir.path().join("bucket").display().to_string()
    }
}

/// The prefix the S3 sink writes under: objects outside it would be a bug.
const PREFIX: &str = "conformance/run-1";

struct S3 {
    // Field order: the sink and its runtime go before the server stops.
    sink: Arc<S3Sink>,
    runtime: tokio::runtime::Runtime,
    server: support::S3Server,
}

impl S3 {
    fn new() -> S3 {
        let server = support::S3Server::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sink = {
            let _inside = runtime.enter();
            Arc::new(S3Sink::new(server.config(PREFIX)).expect("S3 sink"))
        };
        S3 { sink, runtime, server }
    }
}

impl Backend for S3 {
    fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let store = self.sink.store();
        self.runtime.block_on(async {
            let listed: Vec<_> = store.list(None).try_collect().await.expect("list the bucket");
            let prefix = StorePath::from(PREFIX);
            let mut out = BTreeMap::new();
            for meta in listed {
                let relative: Vec<_> = meta
                    .location
                    .prefix_match(&prefix)
                    .unwrap_or_else(|| panic!("{} is outside the prefix {PREFIX}", meta.location))
                    .map(|part| part.as_ref().to_owned())
                    .collect();
                let body = store
                    .get(&meta.location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("body");
                out.insert(relative.join("/"), body.to_vec());
            }
            out
        })
    }

    fn expected_location(&self) -> String {
        format!("s3://{}/{PREFIX}", support::BUCKET)
    }

    /// The server's request log shows the parts of a multipart upload (s3rver gives multipart
    /// objects a plain MD5 ETag, so the object itself does not tell).
    fn stored_in_parts(&self, key: &str) -> Option<bool> {
        let part = format!("/{PREFIX}/{key}?partNumber=");
        Some(self.server.requests().contains(&part))
    }
}

fn put_replaces_the_object_and_leaves_one(backend: &dyn Backend) {
    let sink = backend.sink();
    let key = "2026/11/24/17/events-1-2026-11-24-17-00-00-x";
    sink.put(key, b"first body, longer than the second\n").expect("put");
    sink.put(key, b"second\n").expect("put again");
    let objects = backend.objects();
    assert_eq!(objects.keys().collect::<Vec<_>>(), [key]);
    assert_eq!(objects[key], b"second\n");
}

fn nested_keys_land_where_they_say(backend: &dyn Backend) {
    let sink = backend.sink();
    let keys = [
        "top-level",
        "2026/11/24/17/events-1-a",
        "2026/11/24/18/events-1-b",
        "processing-failed/2026/11/24/17/events-1-c",
        "year=2026/month=11/day=24/part-0.json.gz",
    ];
    for key in keys {
        sink.put(key, key.as_bytes()).expect(key);
    }
    let objects = backend.objects();
    assert_eq!(objects.len(), keys.len(), "{:?}", objects.keys());
    for key in keys {
        assert_eq!(objects.get(key).map(Vec::as_slice), Some(key.as_bytes()), "{key}");
    }
}

fn read_head_returns_the_first_bytes(backend: &dyn Backend) {
    let sink = backend.sink();
    sink.put("a/object", b"0123456789").expect("put");
    sink.put("a/empty", b"").expect("put empty");
    assert_eq!(sink.read_head("a/object", 4).expect("head"), b"0123");
    assert_eq!(sink.read_head("a/object", 10).expect("all"), b"0123456789");
    assert_eq!(
        sink.read_head("a/object", 1000).expect("more than there is"),
        b"0123456789"
    );
    assert_eq!(sink.read_head("a/object", 0).expect("nothing"), b"");
    assert_eq!(sink.read_head("a/empty", 100).expect("empty"), b"");
    let missing = sink.read_head("a/missing", 10).expect_err("missing");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
}

fn get_returns_the_whole_object(backend: &dyn Backend) {
    let sink = backend.sink();
    let body: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    sink.put("errors/object", &body).expect("put");
    sink.put("errors/empty", b"").expect("put empty");
    assert!(
        sink.get("errors/object").expect("get") == body,
        "the object came back different"
    );
    assert_eq!(sink.get("errors/empty").expect("get empty"), b"");
    let missing = sink.get("errors/missing").expect_err("missing");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
}

fn list_returns_the_keys_under_a_prefix_sorted(backend: &dyn Backend) {
    let sink = backend.sink();
    let keys = [
        "2026/12/01/00/events-1-d",
        "2026/11/24/18/events-1-c",
        "2026/11/24/17/events-1-b",
        "2026/11/24/17/events-1-a",
        "processing-failed/2026/11/24/17/events-1-e",
        "top",
    ];
    for key in keys {
        sink.put(key, b"x").expect(key);
    }
    let list = |prefix: &str| sink.list(prefix).unwrap_or_else(|e| panic!("list {prefix:?}: {e}"));
    let mut all = keys.to_vec();
    all.sort_unstable();
    assert_eq!(list(""), all);
    assert_eq!(
        list("2026/11/24/17/"),
        ["2026/11/24/17/events-1-a", "2026/11/24/17/events-1-b"]
    );
    assert_eq!(
        list("2026/11/24/1"),
        [
            "2026/11/24/17/events-1-a",
            "2026/11/24/17/events-1-b",
            "2026/11/24/18/events-1-c"
        ],
        "a prefix may end inside a segment"
    );
    assert_eq!(
        list("processing-failed"),
        ["processing-failed/2026/11/24/17/events-1-e"]
    );
    assert_eq!(list("to"), ["top"]);
    assert!(list("2027/").is_empty());
    assert!(list("nothing/here/").is_empty());
}

fn unsafe_keys_are_refused(backend: &dyn Backend) {
    let sink = backend.sink();
    for key in ["", "../escape", "/abs", "a/../../b"] {
        let e = sink.put(key, b"x").expect_err(key);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{key:?}: {e}");
    }
    assert!(backend.objects().is_empty(), "nothing written");
}

fn large_objects_round_trip(backend: &dyn Backend) {
    let sink = backend.sink();
    // Past the multipart threshold, not a whole number of parts, and no repeating period that
    // would hide a part written twice or out of order.
    let len = MULTIPART_THRESHOLD + 3 * 1024 * 1024 + 17;
    let body: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    sink.put("big/object", &body).expect("put large");
    let objects = backend.objects();
    let got = objects.get("big/object").expect("stored");
    assert_eq!(got.len(), body.len());
    assert!(got == &body, "the large object came back different");
    assert_ne!(
        backend.stored_in_parts("big/object"),
        Some(false),
        "not a multipart upload"
    );
    assert_eq!(sink.read_head("big/object", 100).expect("head"), &body[..100]);
}

fn concurrent_puts_of_different_keys_all_land(backend: &dyn Backend) {
    let sink = backend.sink();
    std::thread::scope(|scope| {
        for writer in 0..8 {
            let sink = sink.clone();
            scope.spawn(move || {
                for i in 0..5 {
                    let key = format!("shard-{writer}/object-{i}");
                    sink.put(&key, key.repeat(1000).as_bytes()).expect("put");
                }
            });
        }
    });
    let objects = backend.objects();
    assert_eq!(objects.len(), 40);
    for (key, body) in objects {
        assert_eq!(body, key.repeat(1000).as_bytes(), "{key}");
    }
}

fn location_names_the_destination(backend: &dyn Backend) {
    assert_eq!(backend.sink().location(), backend.expected_location());
}

/// One `#[test]` per check and backend, so failures name both.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod local_dir {
            $(#[test] fn $check() { super::$check(&super::Local::new()); })*
        }
        mod s3 {
            $(#[test] fn $check() { super::$check(&super::S3::new()); })*
        }
    };
}

conformance!(
    put_replaces_the_object_and_leaves_one,
    nested_keys_land_where_they_say,
    read_head_returns_the_first_bytes,
    get_returns_the_whole_object,
    list_returns_the_keys_under_a_prefix_sorted,
    unsafe_keys_are_refused,
    large_objects_round_trip,
    concurrent_puts_of_different_keys_all_land,
    location_names_the_destination,
);
