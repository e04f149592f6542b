import Testing

@Test func placeholderGGUF() { #expect(Bool(true)) }
