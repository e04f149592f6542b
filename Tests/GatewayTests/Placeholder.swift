import Testing
@Test func gatewayPlaceholder() { #expect(Bool(true)) }
