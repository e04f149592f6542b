@testable import Redis
import Testing

@Suite struct RedisConfigurationTests {
    @Test func hostAlone() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.host == "cache.internal" && configuration.port == 6379 && configuration.database == 0)
        #expect(configuration.username == nil && configuration.password == nil)
        #expect(configuration.description == "redis://cache.internal:6379/0")
    }

    @Test func everyPart() throws {
        let configuration = try RedisConfiguration(url: "redis://app:s3cr%40t%2F@10.0.0.5:6380/3")
        #expect(configuration.host == "10.0.0.5" && configuration.port == 6380 && configuration.database == 3)
        #expect(configuration.username == "app" && configuration.password == "s3cr@t/")
        #expect(configuration.description == "redis://app:***@10.0.0.5:6380/3")
    }

    @Test func passwordAloneAndUnencodedAt() throws {
        let configuration = try RedisConfiguration(url: " redis://:p@ss:word@localhost:7000/ ")
        #expect(configuration.username == nil && configuration.password == "p@ss:word")
        #expect(configuration.host == "localhost" && configuration.port == 7000 && configuration.database == 0)
    }

    @Test func ipv6() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(configuration.host == "::1" && configuration.port == 6390 && configuration.database == 1)
        #expect(configuration.endpoint == "[::1]:6390")
        #expect(try RedisConfiguration(url: "redis://[fe80::1]").port == 6379)
    }

    @Test func tlsIsRefusedClearly() {
        #expect {
            try RedisConfiguration(url: "rediss://:hunter2@redis.example.com:6380")
        } throws: { error in
            let text = "\(error)"
            return text.contains("TLS not supported") && !text.contains("hunter2")
        }
    }

    @Test(arguments: [
        "http://:hunter2@host", "localhost:6379", "redis://", "redis://:hunter2@", "redis://host:0",
        "redis://host:65536", "redis://host:port", "redis://host/db", "redis://host/-1", "redis://host?x=1",
        "redis://user-only@host", "redis://:hun%zzter2@host", "redis://[::1", "redis://[::1]x",
        "redis://app:hunter2@host:99999",
    ])
    func malformedURLsAreInvalidAndNeverShowThePassword(_ url: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            guard case .invalidURL(let message) = error as? RedisError else { return false }
            return !message.contains("hunter2") && !"\(error)".contains("hunter2") && !"\(error)".contains("hun%zz")
        }
    }

    @Test func thePasswordIsHiddenFromDumps() throws {
        let configuration = try RedisConfiguration(url: "redis://:hunter2@host")
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
        #expect(!"\(configuration)".contains("hunter2"))
    }

    @Test func poolSizeIsBounded() {
        var configuration = RedisConfiguration(poolSize: 0)
        #expect(configuration.poolSize == 1)
        configuration.poolSize = 10_000
        #expect(configuration.poolSize == 256)
    }

    @Test func expiriesRoundUpToMilliseconds() {
        #expect(RedisClient.milliseconds(.milliseconds(1500)) == 1500)
        #expect(RedisClient.milliseconds(.microseconds(1)) == 1)
        #expect(RedisClient.milliseconds(.nanoseconds(1_000_001)) == 2)
        #expect(RedisClient.milliseconds(.seconds(0)) == 0)
    }

    @Test func scriptSHA1() {
        // As sha1sum computes it; RedisClientTests checks it against SCRIPT LOAD.
        #expect(RedisScript("return 'hello moon'").sha1 == "8e3d8cfcbb6571ecf555cc0a7d6fb950b4437dc6")
    }
}
