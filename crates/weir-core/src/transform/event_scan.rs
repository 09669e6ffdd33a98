//! A fast reader for the Firehose event's usual shape, beside the serde one in [`envelope`](super::envelope).
//!
//! Reading a 3 MB event with serde_json was ~45% of a whole `csv` invocation: it scans every base64
//! string for escapes after a UTF-8 check of the whole event, then base64 decodes each record into its own
//! vector. This reader accepts only a strict subset of what serde accepts for [`FirehoseEvent`]: known
//! fields once each, strings without escapes or control characters, integers without fraction or
//! exponent. The base64 decoder checks the `data` strings, so they need no UTF-8 check of
//! their own. Anything else returns `None` and the caller reads the event with serde, which also
//! produces the error message: this reader never decides that an event is invalid.
//!
//! [`FirehoseEvent`]: super::envelope::FirehoseEvent

use super::doc::next_special;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The event as read: strings borrowed from it, `data` still base64.
pub(crate) struct ScannedEvent<'a> {
    pub(crate) invocation_id: &'a str,
    pub(crate) delivery_stream_arn: &'a str,
    pub(crate) source_kinesis_stream_arn: Option<&'a str>,
    pub(crate) region: &'a str,
    pub(crate) records: Vec<ScannedRecord<'a>>,
}

/// One record as read.
pub(crate) struct ScannedRecord<'a> {
    pub(crate) record_id: &'a str,
    pub(crate) arrival_ms: i64,
    /// The base64 text, not yet checked.
    pub(crate) data: &'a [u8],
    pub(crate) shard_id: &'a str,
    pub(crate) partition_key: &'a str,
    pub(crate) sequence_number: &'a str,
}

impl ScannedEvent<'_> {
    /// Decodes every record's data into one buffer (one allocation for the batch instead of one per
    /// record) and returns each record's `(start, end)` in it; `None` if a record is not valid base64.
    pub(crate) fn decode_data(&self, buffer: &mut Vec<u8>) -> Option<Vec<(usize, usize)>> {
        // Base64 decodes to at most 3 bytes per 4 characters, so this fits every record.
        let capacity: usize = self.records.iter().map(|r| r.data.len().div_ceil(4) * 3).sum();
        buffer.clear();
        // Reserved, not zeroed up front: `decode_vec` zeroes only each record's few hundred bytes.
        buffer.reserve(capacity);
        let mut spans = Vec::with_capacity(self.records.len());
        for record in &self.records {
            let start = buffer.len();
            STANDARD.decode_vec(record.data, buffer).ok()?;
            spans.push((start, buffer.len()));
        }
        Some(spans)
    }
}

/// Reads `event` if it has the usual shape; `None` sends the caller to serde.
pub(crate) fn scan(event: &[u8]) -> Option<ScannedEvent<'_>> {
    let mut s = Scanner { bytes: event, pos: 0 };
    let mut invocation_id = None;
    let mut delivery_stream_arn = None;
    let mut source_kinesis_stream_arn = None;
    let mut region = None;
    let mut records = None;
    s.expect(b'{')?;
    if !s.eat(b'}') {
        loop {
            let key = s.key()?;
            match key {
                b"invocationId" => set(&mut invocation_id, s.string()?)?,
                b"deliveryStreamArn" => set(&mut delivery_stream_arn, s.string()?)?,
                b"sourceKinesisStreamArn" => {
                    let value = if s.eat_literal(b"null") {
                        None
                    } else {
                        Some(s.string()?)
                    };
                    set(&mut source_kinesis_stream_arn, value)?;
                }
                b"region" => set(&mut region, s.string()?)?,
                b"records" => set(&mut records, s.records()?)?,
                _ => return None,
            }
            if !s.next_member()? {
                break;
            }
        }
    }
    s.skip_ws();
    if s.pos != s.bytes.len() {
        return None;
    }
    Some(ScannedEvent {
        invocation_id: invocation_id?,
        delivery_stream_arn: delivery_stream_arn?,
        source_kinesis_stream_arn: source_kinesis_stream_arn.flatten(),
        region: region?,
        records: records?,
    })
}

/// Stores a field's value; `None` (back to serde, which reports it) when the field repeats.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        self.skip_ws();
        if self.bytes[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    /// After a member or element: `true` for `,`, `false` for the closing `}` or `]`.
    fn next_member(&mut self) -> Option<bool> {
        self.skip_ws();
        let byte = *self.bytes.get(self.pos)?;
        self.pos += 1;
        match byte {
            b',' => Some(true),
            b'}' | b']' => Some(false),
            _ => None,
        }
    }

    /// A string's raw bytes between its quotes, if it has no escapes or control characters (a string
    /// that has any is serde's to read).
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = next_special(self.bytes, start);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        Some(&self.bytes[start..end])
    }

    /// A string's text.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_string()?).ok()
    }

    /// A member's key and its `:`. Keys compared to the known names need no UTF-8 check: an unknown
    /// key goes back to serde.
    fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.raw_string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// An integer as serde reads one into an i64 or u64: no fraction, no exponent, no leading zero. Up to
    /// 19 digits, which always fit a u64 (longer ones are serde's).
    fn integer(&mut self) -> Option<i128> {
        self.skip_ws();
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(negative);
        let mut end = start;
        let mut magnitude = 0u64;
        while let Some(&b) = self.bytes.get(end)
            && b.is_ascii_digit()
        {
            magnitude = magnitude.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 19 || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if matches!(self.bytes.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = end;
        let magnitude = i128::from(magnitude);
        Some(if negative { -magnitude } else { magnitude })
    }

    fn i64(&mut self) -> Option<i64> {
        i64::try_from(self.integer()?).ok()
    }

    /// A u64; a minus sign (even on `-0`) goes back to serde.
    fn u64(&mut self) -> Option<u64> {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'-') {
            return None;
        }
        u64::try_from(self.integer()?).ok()
    }

    fn records(&mut self) -> Option<Vec<ScannedRecord<'a>>> {
        self.expect(b'[')?;
        // Each record is a few hundred bytes of event at least.
        let mut records = Vec::with_capacity(self.bytes.len() / 512);
        if self.eat(b']') {
            return Some(records);
        }
        loop {
            records.push(self.record()?);
            if !self.next_member()? {
                return Some(records);
            }
        }
    }

    fn record(&mut self) -> Option<ScannedRecord<'a>> {
        let mut record_id = None;
        let mut arrival_ms = None;
        let mut data = None;
        let mut metadata = None;
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                match self.key()? {
                    b"recordId" => set(&mut record_id, self.string()?)?,
                    b"approximateArrivalTimestamp" => set(&mut arrival_ms, self.i64()?)?,
                    b"data" => set(&mut data, self.raw_string()?)?,
                    b"kinesisRecordMetadata" => {
                        let value = if self.eat_literal(b"null") {
                            None
                        } else {
                            Some(self.metadata()?)
                        };
                        set(&mut metadata, value)?;
                    }
                    _ => return None,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        let (shard_id, partition_key, sequence_number) = metadata.flatten().unwrap_or(("", "", ""));
        Some(ScannedRecord {
            record_id: record_id?,
            arrival_ms: arrival_ms?,
            data: data?,
            shard_id,
            partition_key,
            sequence_number,
        })
    }

    /// `kinesisRecordMetadata`: the shard id, partition key and sequence number (the rest is checked
    /// and dropped, as the serde reader does).
    fn metadata(&mut self) -> Option<(&'a str, &'a str, &'a str)> {
        let mut shard_id = None;
        let mut partition_key = None;
        let mut sequence_number = None;
        let mut subsequence = None;
        let mut arrival_ms = None;
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                match self.key()? {
                    b"shardId" => set(&mut shard_id, self.string()?)?,
                    b"partitionKey" => set(&mut partition_key, self.string()?)?,
                    b"sequenceNumber" => set(&mut sequence_number, self.string()?)?,
                    b"subsequenceNumber" => set(&mut subsequence, self.u64()?)?,
                    b"approximateArrivalTimestamp" => set(&mut arrival_ms, self.i64()?)?,
                    _ => return None,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        arrival_ms?;
        Some((shard_id?, partition_key?, sequence_number?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_events_go_back_to_serde() {
        for event in [
            r#"{"invocationId":"a","deliveryStreamArn":"b","region":"c","records":[],"x":1}"#,
            r#"{"invocationId":"a\"","deliveryStreamArn":"b","region":"c","records":[]}"#,
            r#"{"invocationId":"a","invocationId":"a","deliveryStreamArn":"b","region":"c","records":[]}"#,
            r#"{"invocationId":"a","deliveryStreamArn":"b","region":"c","records":[{"recordId":"r","approximateArrivalTimestamp":1.0,"data":""}]}"#,
            r#"{"invocationId":"a","deliveryStreamArn":"b","region":"c","records":[]} x"#,
            r#"{"deliveryStreamArn":"b","region":"c","records":[]}"#,
        ] {
            assert!(scan(event.as_bytes()).is_none(), "{event}");
        }
        let event = r#" { "invocationId" : "a" , "deliveryStreamArn":"b","sourceKinesisStreamArn":null,"region":"c","records":[ {"recordId":"r","approximateArrivalTimestamp":-5,"data":"eyJ9","kinesisRecordMetadata":{"shardId":"s","partitionKey":"p","sequenceNumber":"1","subsequenceNumber":0,"approximateArrivalTimestamp":-5}} ] } "#;
        let scanned = scan(event.as_bytes()).expect("the usual shape");
        assert_eq!(scanned.records[0].arrival_ms, -5);
        assert_eq!(scanned.records[0].shard_id, "s");
        let mut buffer = Vec::new();
        assert_eq!(scanned.decode_data(&mut buffer), Some(vec![(0, 3)]));
        assert_eq!(buffer, b"{\"}");
    }
}
