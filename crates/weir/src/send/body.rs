//! Request bodies: how records are framed (one object, NDJSON or a JSON array) and gzip.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchFormat {
    /// One record per line, `application/x-ndjson`.
    Ndjson,
    /// A JSON array of records, `application/json`.
    Array,
}

/// How the records of one request are laid out in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `--batch-size 1`: the record itself, `application/json`.
    Single,
    Ndjson,
    Array,
}

impl Framing {
    pub fn new(batch_size: u32, format: BatchFormat) -> Framing {
        match (batch_size, format) {
            (1, _) => Framing::Single,
            (_, BatchFormat::Ndjson) => Framing::Ndjson,
            (_, BatchFormat::Array) => Framing::Array,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Single | Framing::Array => "application/json",
            Framing::Ndjson => "application/x-ndjson",
        }
    }

    pub fn open(self, out: &mut Vec<u8>) {
        if self == Framing::Array {
            out.push(b'[');
        }
    }

    /// Before every record but the first.
    pub fn separate(self, out: &mut Vec<u8>) {
        if self == Framing::Array {
            out.push(b',');
        }
    }

    /// After every record.
    pub fn end_record(self, out: &mut Vec<u8>) {
        if self == Framing::Ndjson {
            out.push(b'\n');
        }
    }

    pub fn close(self, out: &mut Vec<u8>) {
        if self == Framing::Array {
            out.push(b']');
        }
    }

    /// The whole body of `records`, into `out` (cleared first).
    pub fn encode<'a>(self, records: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
        out.clear();
        self.open(out);
        for (i, record) in records.into_iter().enumerate() {
            if i > 0 {
                self.separate(out);
            }
            out.extend_from_slice(record);
            self.end_record(out);
        }
        self.close(out);
    }
}

/// Gzips `body` into `out` (cleared first), at the fastest level: the sender's CPU is what limits it.
pub fn gzip(body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut encoder = GzEncoder::new(out, Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    let _ = encoder.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn encode(framing: Framing, records: &[&str]) -> String {
        let mut out = Vec::new();
        framing.encode(records.iter().map(|r| r.as_bytes()), &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn framings() {
        assert_eq!(encode(Framing::Single, &["{}"]), "{}");
        assert_eq!(encode(Framing::Ndjson, &["{}", "{\"a\":1}"]), "{}\n{\"a\":1}\n");
        assert_eq!(encode(Framing::Array, &["{}", "{\"a\":1}"]), "[{},{\"a\":1}]");
        assert_eq!(Framing::new(1, BatchFormat::Array), Framing::Single);
    }

    #[test]
    fn gzip_round_trips() {
        let mut out = Vec::new();
        gzip(b"{\"a\":1}\n", &mut out);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_string(&mut text)
            .expect("gzip");
        assert_eq!(text, "{\"a\":1}\n");
    }
}
