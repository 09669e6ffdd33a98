use super::*;

fn map_with(toml: &str, delivery: Option<&str>, mode: StreamMode) -> Result<Mapping, Inexpressible> {
    let config = Config::parse(toml).expect("parses");
    config.validate().expect("valid locally");
    template_parameters(&config, delivery, mode)
}

fn map(toml: &str) -> Result<Mapping, Inexpressible> {
    map_with(toml, None, StreamMode::Provisioned)
}

fn value<'a>(mapping: &'a Mapping, key: &str) -> &'a str {
    mapping
        .parameters
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
        .unwrap_or_else(|| panic!("no parameter {key}"))
}

#[test]
fn the_default_pipeline_maps_to_one_provisioned_stream_and_its_delivery() {
    let m = map("").expect("expressible");
    for (key, expected) in [
        ("StreamName", "events"),
        ("StreamMode", "PROVISIONED"),
        ("ShardCount", "4"),
        ("RetentionHours", "24"),
        ("PartitionKey", "random"),
        ("MaxRecordsPerRequest", "500"),
        ("MaxRequestBytes", "5242880"),
        ("MaxJsonDepth", "64"),
        ("DeliveryStreamName", "events"),
        ("BufferSizeMiB", "1"),
        ("BufferIntervalSeconds", "10"),
        ("Compression", "UNCOMPRESSED"),
        ("Prefix", ""),
        ("ErrorOutputPrefix", ""),
        ("TransformSpec", r#"{"kind":"newline"}"#),
        ("ProcessorRetries", "3"),
        ("ProcessorBufferSizeMB", "1"),
        ("ProcessorBufferIntervalSeconds", "10"),
        ("TransformTimeoutSeconds", "60"),
        ("DynamicPartitioning", "false"),
        ("PartitionKeyQuery", ""),
    ] {
        assert_eq!(value(&m, key), expected, "{key}");
    }
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn on_demand_mode_says_the_shard_count_is_unused() {
    let m = map_with("", None, StreamMode::OnDemand).expect("expressible");
    assert_eq!(value(&m, "StreamMode"), "ON_DEMAND");
    assert!(m.notes.iter().any(|n| n.contains("streams[0].shards")), "{:?}", m.notes);
}

#[test]
fn the_shipped_example_needs_a_delivery_named_and_maps_its_first_one() {
    let example = include_str!("../../../../../weir.example.toml");
    let e = map(example).expect_err("two deliveries");
    assert_eq!(e.key, "deliveries");
    assert!(
        e.message.contains("--delivery") && e.message.contains("events-csv"),
        "{e}"
    );

    let m = map_with(example, Some("events"), StreamMode::Provisioned).expect("expressible");
    assert_eq!(value(&m, "Compression"), "GZIP");
    assert_eq!(
        value(&m, "Prefix"),
        "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
    );
    assert_eq!(
        value(&m, "ErrorOutputPrefix"),
        "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
    );

    let e = map_with(example, Some("nope"), StreamMode::Provisioned).expect_err("unknown");
    assert!(e.message.contains("\"nope\""), "{e}");
}

#[test]
fn settings_aws_cannot_express_name_their_key() {
    let dp = "prefix = \"p/!{partitionKeyFromQuery:event}/\"\n\
              error_output_prefix = \"e/!{firehose:error-output-type}/\"\n";
    for (toml, key, needle) in [
        (
            "[[deliveries]]\ncompression = \"zstd\"",
            "deliveries[0].compression",
            "zstd",
        ),
        (
            "[[deliveries]]\n[deliveries.processor]\ncommand = [\"python3\", \"shim.py\"]",
            "deliveries[0].processor.command",
            "python3",
        ),
        (
            "[[deliveries]]\nformat = { kind = \"parquet\", columns = [{ name = \"a\", type = \"string\" }] }",
            "deliveries[0].format",
            "Glue",
        ),
        (
            "[[deliveries]]\n[deliveries.s3]\nbucket = \"weir-test\"\nendpoint = \"http://127.0.0.1:9000\"\npath_style = true",
            "deliveries[0].s3.endpoint",
            "S3-compatible",
        ),
        ("[[streams]]\nretention = \"12h\"", "streams[0].retention", "24h"),
        (
            "[[deliveries]]\n[deliveries.processor]\ntimeout = \"10m\"",
            "deliveries[0].processor.timeout",
            "5m",
        ),
        (
            &format!("[[deliveries]]\n{dp}[deliveries.dynamic_partitioning]\nquery_keys = {{ event = \".event\" }}"),
            "deliveries[0].buffer_size",
            "64 MiB",
        ),
        (
            &format!(
                "[[deliveries]]\nbuffer_size = \"64MiB\"\ntransform = \"flatten\"\n{dp}\
                 [deliveries.dynamic_partitioning]\nquery_keys = {{ event = \".event\" }}"
            ),
            "deliveries[0].dynamic_partitioning.query_keys",
            "flatten",
        ),
    ] {
        let e = map(toml).expect_err(toml);
        assert_eq!(e.key, key, "{toml}");
        assert!(e.to_string().contains(needle), "{toml}: {e}");
        assert!(e.to_string().contains(key), "{toml}: {e}");
    }
}

#[test]
fn query_keys_become_firehose_metadata_extraction() {
    let m = map("[[deliveries]]\nbuffer_size = \"64MiB\"\n\
         prefix = \"p/!{partitionKeyFromQuery:event}/!{partitionKeyFromQuery:user}/\"\n\
         error_output_prefix = \"e/!{firehose:error-output-type}/\"\n\
         [deliveries.dynamic_partitioning]\nquery_keys = { event = \".event\", user = \".user.id\" }")
    .expect("expressible");
    assert_eq!(value(&m, "DynamicPartitioning"), "true");
    assert_eq!(value(&m, "PartitionKeyQuery"), "{event: (.event), user: (.user.id)}");
    assert_eq!(value(&m, "BufferSizeMiB"), "64");
}

#[test]
fn the_s3_prefix_goes_before_firehose_prefixes_and_the_bucket_is_the_stacks() {
    let m = map("[[deliveries]]\nprefix = \"p/!{timestamp:yyyy}/\"\n\
         error_output_prefix = \"e/!{firehose:error-output-type}/\"\n\
         [deliveries.s3]\nbucket = \"mine\"\nprefix = \"weir/\"")
    .expect("expressible");
    assert_eq!(value(&m, "Prefix"), "weir/p/!{timestamp:yyyy}/");
    assert_eq!(value(&m, "ErrorOutputPrefix"), "weir/e/!{firehose:error-output-type}/");
    assert!(m.notes.iter().any(|n| n.contains("\"mine\"")), "{:?}", m.notes);

    let m = map("[[deliveries]]\n[deliveries.s3]\nbucket = \"mine\"\nprefix = \"weir\"").expect("expressible");
    assert_eq!(
        value(&m, "Prefix"),
        "weir/",
        "Firehose appends YYYY/MM/dd/HH/ to a static prefix"
    );
    assert_eq!(value(&m, "ErrorOutputPrefix"), "");
}

#[test]
fn sizes_and_durations_become_firehose_units() {
    let m = map("[[deliveries]]\nbuffer_size = \"5MB\"\nbuffer_interval = \"1500ms\"\n\
         [deliveries.processor]\nbuffer_size = \"200KB\"\ntimeout = \"90s\"")
    .expect("expressible");
    assert_eq!(value(&m, "BufferSizeMiB"), "5", "5 MB is 4.77 MiB, rounded up");
    assert_eq!(value(&m, "BufferIntervalSeconds"), "2");
    assert_eq!(value(&m, "ProcessorBufferSizeMB"), "0.2");
    assert_eq!(value(&m, "TransformTimeoutSeconds"), "90");
    assert_eq!(megabytes(2_500_000), "2.5");
    assert_eq!(megabytes(3_000_000), "3");
}

#[test]
fn csv_objects_are_noted_to_have_no_header_on_aws() {
    let m = map("[[deliveries]]\nformat = \"csv\"\n\
         transform = { kind = \"csv\", columns = [{ name = \"a\", type = \"string\" }] }")
    .expect("expressible");
    assert!(value(&m, "TransformSpec").starts_with(r#"{"kind":"csv","columns":"#));
    assert!(m.notes.iter().any(|n| n.contains("SKIP_HEADER = 0")), "{:?}", m.notes);
}
