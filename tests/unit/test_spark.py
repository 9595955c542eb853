from palindrom.spark import s3a_settings


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
