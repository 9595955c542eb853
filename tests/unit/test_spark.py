from palindrom.lake.files import read_files
from palindrom.spark import LOG_CONFIG, s3a_settings


def test_an_s3_compatible_endpoint_is_addressed_by_path_and_tls_follows_its_scheme():
    assert s3a_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}) == {
        "fs.s3a.endpoint": "http://127.0.0.1:9000",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.endpoint.region": "eu-west-1",
    }
    assert s3a_settings({"AWS_ENDPOINT_URL": "https://minio.internal"})["fs.s3a.connection.ssl.enabled"] == "true"


def test_the_s3_specific_endpoint_wins_and_aws_itself_needs_no_settings():
    env = {"AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://s3:2",
           "AWS_DEFAULT_REGION": "us-east-2"}
    assert s3a_settings(env)["fs.s3a.endpoint"] == "http://s3:2"
    assert s3a_settings(env)["fs.s3a.endpoint.region"] == "us-east-2"
    assert s3a_settings({"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}) == {}  # S3A reads these itself


def test_many_landing_files_are_listed_with_a_task_per_core_not_per_file(spark_session, tmp_path):
    for i in range(40):  # past Spark's threshold (32) for listing paths in a job of their own
        (tmp_path / f"events-{i:02d}.jsonl").write_text("{}\n")
    context = spark_session.sparkContext
    context.setJobGroup("listing landing files", "test")
    try:
        files = read_files(spark_session, [(tmp_path / f"events-{i:02d}.jsonl").as_uri() for i in range(40)])
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    tracker = context.statusTracker()
    stages = [tracker.getStageInfo(s) for j in tracker.getJobIdsForGroup("listing landing files")
              for s in tracker.getJobInfo(j).stageIds]
    assert stages, "Spark listed the 40 files without a job: the threshold this test relies on has moved"
    assert max(stage.numTasks for stage in stages) <= context.defaultParallelism
    assert files.count() == 40


def test_local_spark_logs_warnings_by_the_projects_log4j2_file(spark_session):
    """Not Spark's default profile, which prints its banner twice a process and logs INFO until the
    session is up; Hadoop's expected "no native library" warning is left out."""
    log4j = spark_session.sparkContext._jvm.org.apache.logging.log4j
    configuration = log4j.core.LoggerContext.getContext(False).getConfiguration()
    assert configuration.getConfigurationSource().getLocation() == str(LOG_CONFIG)
    assert log4j.LogManager.getRootLogger().getLevel().toString() == "WARN"
    assert log4j.LogManager.getLogger("org.apache.hadoop.util.NativeCodeLoader").getLevel().toString() == "ERROR"
