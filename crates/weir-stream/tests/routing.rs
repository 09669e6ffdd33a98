//! Routing checked against an independent implementation: Python's `hashlib.md5` and Kinesis's even
//! split of the 128-bit hash key space (`width = 2**128 // n`, `shard = min(h // width, n - 1)`).
//!
//! These tests need `python3` on the PATH and fail, rather than skip, without it.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use weir_core::kinesis::{HashKey, ShardRanges};
use weir_stream::{PutRecord, ReadLimits, ShardId, ShardIteratorType, Stream, StreamConfig};

const SHARD_COUNTS: [u32; 8] = [1, 2, 3, 4, 5, 7, 16, 1000];

/// Vectors computed with Python 3.11 (`hashlib.md5(key.encode()).hexdigest()` and the formula
/// above): key, MD5 as a big-endian integer, shard for each of [`SHARD_COUNTS`].
fn fixed_vectors() -> Vec<(String, u128, [u32; 8])> {
    [
        ("a", 0x0cc175b9_c0f1b6a8_31c399e2_69772661, [0, 0, 0, 0, 0, 0, 0, 49]),
        ("b", 0x92eb5ffe_e6ae2fec_3ad71c77_7531578f, [0, 1, 1, 2, 2, 4, 9, 573]),
        ("c", 0x4a8a08f0_9d37b737_95649038_408b5f33, [0, 0, 0, 1, 1, 2, 4, 291]),
        ("0", 0xcfcd2084_95d565ef_66e7dff9_f98764da, [0, 1, 2, 3, 4, 5, 12, 811]),
        (" ", 0x7215ee9c_7d9dc229_d2921a40_e899ec5f, [0, 0, 1, 1, 2, 3, 7, 445]),
        (
            "partition-key-1",
            0x1919e33a_21e68e96_1f03b16b_a66b2376,
            [0, 0, 0, 0, 0, 0, 1, 98],
        ),
        (
            "user-1",
            0xd6d77053_92bc7af6_33328bea_8c4c6904,
            [0, 1, 2, 3, 4, 5, 13, 839],
        ),
        (
            "ключ",
            0xc3657b66_c60a3072_92aae11f_07b04ae7,
            [0, 1, 2, 3, 3, 5, 12, 763],
        ),
        ("🦀", 0xcce906c4_2b6c90f0_cd516a0b_3bae0e3e, [0, 1, 2, 3, 4, 5, 12, 800]),
        (
            "日本語キー",
            0x6d9b0f6d_380f08a5_87eaad1a_4bd8218b,
            [0, 0, 1, 1, 2, 2, 6, 428],
        ),
        (
            &"x".repeat(256),
            0xc7a139a2_b8e92164_276f7789_17ba10b9,
            [0, 1, 2, 3, 3, 5, 12, 779],
        ),
    ]
    .into_iter()
    .map(|(key, hash, shards)| (key.to_owned(), hash, shards))
    .collect()
}

/// Partition keys of every kind Kinesis accepts: 1 to 256 Unicode characters.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        // ASCII
        "a",
        "A",
        "z",
        "key",
        "partition-key-1",
        "partition-key-2",
        "user-42",
        "order#2024-01-01",
        "Hello, World!",
        "!@#$%^&*()",
        "a/b/c",
        "key=value&x=y",
        "\"quoted\"",
        "back\\slash",
        "{\"json\":true}",
        // digits
        "0",
        "1",
        "42",
        "007",
        "-1",
        "3.14159",
        "18446744073709551616",
        "340282366920938463463374607431768211455",
        // Unicode: Cyrillic, emoji, CJK, precomposed and combining accents, ZWJ sequence, BOM, the
        // last code point, NUL
        "ключ",
        "🦀",
        "日本語キー",
        "naïve",
        "é",
        "e\u{301}",
        "Ω≈ç√∫",
        "👨‍👩‍👧",
        "\u{feff}bom",
        "\u{10ffff}",
        "nul\u{0}inside",
        // whitespace
        " ",
        "   ",
        "\t",
        "\n",
        "\r\n",
        "a b",
        " leading",
        "trailing ",
        "\u{a0}",
        "\u{2003}em space",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // The longest keys: 256 characters of 1 byte and of 4 bytes.
    keys.push("x".repeat(256));
    keys.push("🦀".repeat(256));
    keys
}

/// What Python computed for one key: the MD5 as a big-endian integer and the shard per shard count.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    hash: String,
    shards: Vec<u32>,
}

const PYTHON: &str = r#"
import hashlib, json, sys
request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = []
for key in request["keys"]:
    h = int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")
    out.append({"hash": str(h), "shards": [min(h // (2**128 // n), n - 1) for n in request["counts"]]})
sys.stdout.write(json.dumps(out))
"#;

/// Python's answer for [`keys`] and [`SHARD_COUNTS`], computed once per test binary.
fn python_expected() -> &'static [Expected] {
    static EXPECTED: OnceLock<Vec<Expected>> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let request = serde_json::json!({ "keys": keys(), "counts": SHARD_COUNTS });
        let mut child = Command::new("python3")
            .args(["-c", PYTHON])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs `python3` on the PATH to compute the routing vectors independently, \
                     and could not run it: {e}"
                )
            });
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(request.to_string().as_bytes())
            .expect("writing keys to python3");
        let output = child.wait_with_output().expect("waiting for python3");
        assert!(
            output.status.success(),
            "python3 failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let expected: Vec<Expected> = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "python3 printed something unexpected ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert_eq!(
            expected.len(),
            keys().len(),
            "python3 answered for a different number of keys"
        );
        expected
    })
}

fn open(dir: &std::path::Path, shard_count: u32) -> Stream {
    let config = StreamConfig {
        shard_count,
        ..StreamConfig::default()
    };
    Stream::open(dir, "events", config).expect("open")
}

#[test]
fn fixed_vectors_route_as_kinesis_does() {
    for (key, hash, shards) in fixed_vectors() {
        let hash_key = HashKey::from_partition_key(&key);
        assert_eq!(hash_key, HashKey(hash), "MD5 of {key:?}");
        for (&n, &shard) in SHARD_COUNTS.iter().zip(&shards) {
            assert_eq!(
                ShardRanges::even(n).shard_for(hash_key),
                shard,
                "key {key:?} with {n} shards"
            );
        }
    }
}

#[test]
fn the_test_keys_are_distinct_valid_partition_keys() {
    let keys = keys();
    assert!(keys.len() >= 40, "{} keys", keys.len());
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len(), "duplicate keys");
    for key in &keys {
        weir_core::kinesis::validate_partition_key(key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
    }
    assert!(keys.iter().any(|k| k.chars().count() == 256 && k.len() == 1024));
}

#[test]
fn routing_matches_python_md5_and_even_split_for_every_shard_count() {
    let keys = keys();
    let expected = python_expected();
    for (i, &n) in SHARD_COUNTS.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stream = open(dir.path(), n);
        let ranges = ShardRanges::even(n);
        let mut used = HashSet::new();
        for (key, want) in keys.iter().zip(expected) {
            let hash = HashKey::from_partition_key(key);
            assert_eq!(hash.to_string(), want.hash, "MD5 of {key:?}");
            let shard = want.shards[i];
            assert_eq!(ranges.shard_for(hash), shard, "ShardRanges::even({n}) for key {key:?}");
            assert_eq!(
                stream.shard_for(key, None),
                ShardId(shard),
                "Stream::shard_for with {n} shards, key {key:?}"
            );
            assert!(
                ranges.range(shard).contains(hash),
                "shard {shard}'s range holds key {key:?}"
            );
            used.insert(shard);
        }
        // With 40-odd keys, small shard counts must see every shard: a routing that sends everything
        // to one shard could otherwise agree with Python by accident on few keys.
        if n <= 7 {
            assert_eq!(used.len(), n as usize, "{n} shards: keys reached only shards {used:?}");
        }
    }
}

#[test]
fn appended_records_land_on_the_shard_python_predicts() {
    let keys = keys();
    let expected = python_expected();
    for n in [4, 7] {
        let column = SHARD_COUNTS.iter().position(|&c| c == n).expect("a tested shard count");
        let dir = tempfile::tempdir().expect("tempdir");
        let stream = open(dir.path(), n);
        let records = keys
            .iter()
            .enumerate()
            .map(|(i, key)| PutRecord::new(key.clone(), format!("record {i}")));
        let results = stream.append_blocking(records.collect()).expect("append");
        assert_eq!(results.len(), keys.len());
        let mut per_shard: Vec<Vec<(String, String)>> = vec![Vec::new(); n as usize];
        for (i, (result, want)) in results.iter().zip(expected).enumerate() {
            let shard = want.shards[column];
            assert_eq!(result.shard_id, ShardId(shard), "{n} shards: key {:?}", keys[i]);
            assert_eq!(result.sequence_number.shard, result.shard_id);
            assert_eq!(result.sequence_number.offset, per_shard[shard as usize].len() as u64);
            per_shard[shard as usize].push((keys[i].clone(), format!("record {i}")));
        }
        for (shard, want) in per_shard.iter().enumerate() {
            let it = stream
                .iterator(ShardId(shard as u32), ShardIteratorType::TrimHorizon)
                .expect("iterator");
            let batch = stream.read(&it, ReadLimits::default()).expect("read");
            let got: Vec<(String, String)> = batch
                .records
                .iter()
                .map(|r| {
                    (
                        r.partition_key.clone(),
                        String::from_utf8(r.data.to_vec()).expect("utf8"),
                    )
                })
                .collect();
            assert_eq!(&got, want, "{n} shards: records read back from shard {shard}");
        }
    }
}
