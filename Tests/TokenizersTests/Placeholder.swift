import Testing

@Test func placeholderTokenizers() { #expect(Bool(true)) }
