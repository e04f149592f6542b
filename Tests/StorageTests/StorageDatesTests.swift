import Foundation
@testable import Storage
import Testing

@Suite struct StorageDatesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func parsesDaysTimesAndDurations() throws {
        #expect(try StorageDates.parse("2027-01-31", direction: .future) == Date(timeIntervalSince1970: 1_801_353_600))
        #expect(try StorageDates.parse("2027-01-31T12:00:00Z", direction: .future) == Date(timeIntervalSince1970: 1_801_396_800))
        #expect(try StorageDates.parse("2027-01-31T14:00:00+02:00", direction: .future) == Date(timeIntervalSince1970: 1_801_396_800))
        #expect(try StorageDates.parse("2027-01-31T12:00:00.500Z", direction: .future) == Date(timeIntervalSince1970: 1_801_396_800.5))
        #expect(try StorageDates.parse("30d", now: now, direction: .future) == now + 30 * day)
        #expect(try StorageDates.parse("24h", now: now, direction: .past) == now - day)
        #expect(try StorageDates.parse("90m", now: now, direction: .past) == now - 5400)
        #expect(try StorageDates.parse("2w", now: now, direction: .future) == now + 14 * day)
    }

    @Test(arguments: ["", "tomorrow", "2027-02-30", "2027-13-01", "31/01/2027", "2027-1-5", "-5d", "5y", "d", "2027-01-31T25:00:00Z"])
    func refusesWhatIsNotADate(_ text: String) {
        #expect(throws: StorageError.self) { try StorageDates.parse(text, now: now, direction: .future) }
    }

    @Test func displaysInUTC() {
        #expect(StorageDates.display(Date(timeIntervalSince1970: 1_801_396_800)) == "2027-01-31 12:00Z")
    }
}
