//! Firehose's object naming, and the seed's transformation.
//!
//! Firehose names an S3 object `<prefix><DeliveryStreamName>-<DeliveryStreamVersion>-<yyyy-MM-dd-HH-mm-ss>-<uuid>`
//! with the default prefix `YYYY/MM/dd/HH/`, all in UTC. weir keeps that shape and makes the two parts
//! Firehose leaves to chance deterministic, which is what makes delivery exactly-once: the time is the
//! approximate arrival time of the object's oldest record, and the UUID is derived from the delivery
//! stream, the shard and the first and last sequence numbers in the object. A replay after a crash
//! therefore rewrites the same object under the same key instead of adding a duplicate.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The namespace of weir's name-based (version 5) batch ids.
const BATCH_ID_NAMESPACE: Uuid = Uuid::from_u128(0x7765_6972_2d62_6174_6368_2d69_6473_0001);

/// The UUID that names the object holding records `first..=last` (sequence numbers, as strings) of
/// shard `shard_id`, delivered by `delivery`.
pub fn batch_id(delivery: &str, shard_id: &str, first: &str, last: &str) -> Uuid {
    let name = format!("{delivery}\n{shard_id}\n{first}\n{last}");
    Uuid::new_v5(&BATCH_ID_NAMESPACE, name.as_bytes())
}

/// Firehose's default object key, `YYYY/MM/dd/HH/<delivery>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`,
/// for an object whose oldest record arrived at `oldest_arrival_ms` (epoch ms).
pub fn default_object_key(delivery: &str, version: u32, oldest_arrival_ms: i64, id: Uuid, extension: &str) -> String {
    let time = utc(oldest_arrival_ms);
    format!(
        "{}{}",
        time.format("%Y/%m/%d/%H/"),
        object_name(delivery, version, oldest_arrival_ms, id, extension)
    )
}

/// The part of an object key after the prefix: `<delivery>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`
/// (see [`crate::prefix`] for the prefix).
pub fn object_name(delivery: &str, version: u32, oldest_arrival_ms: i64, id: Uuid, extension: &str) -> String {
    let time = utc(oldest_arrival_ms);
    format!(
        "{delivery}-{version}-{}-{id}{extension}",
        time.format("%Y-%m-%d-%H-%M-%S")
    )
}

fn utc(epoch_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(epoch_ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The seed's transformation Lambda: every record followed by a newline, so an object is one record
/// per line. (Its Python version also kept a global list across invocations, returning earlier
/// records again from warm Lambdas; this has no state.)
pub fn newline_delimited<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        out.extend_from_slice(record);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_has_firehose_shape_in_utc() {
        let id = batch_id("events", "shardId-000000000001", "49…0", "49…9");
        // 2024-02-21T06:12:33.500Z
        let key = default_object_key("events", 1, 1_708_495_953_500, id, "");
        assert_eq!(key, format!("2024/02/21/06/events-1-2024-02-21-06-12-33-{id}"));
        assert_eq!(id.get_version_num(), 5);
        assert_eq!(id.to_string().len(), 36);
    }

    #[test]
    fn batch_ids_are_deterministic_and_distinct() {
        let a = batch_id("events", "shardId-000000000000", "1", "5");
        assert_eq!(a, batch_id("events", "shardId-000000000000", "1", "5"));
        for other in [
            batch_id("other", "shardId-000000000000", "1", "5"),
            batch_id("events", "shardId-000000000001", "1", "5"),
            batch_id("events", "shardId-000000000000", "2", "5"),
            batch_id("events", "shardId-000000000000", "1", "6"),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn newline_transform_puts_one_record_per_line() {
        let out = newline_delimited([&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
        assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n");
    }
}
