/// Checks filter and test names after parsing, the way Jinja2's compiler does: an unknown name
/// is an error at load time, except inside an `if` block or an inline `if` expression, where it
/// only fails if that code actually runs.
enum Validator {
    static func validate(_ body: [Statement]) throws(TemplateError) {
        for statement in body { try visit(statement, soft: false) }
    }

    private static func visit(_ statement: Statement, soft: Bool) throws(TemplateError) {
        switch statement.kind {
        case .text, .break, .continue: break
        case .output(let expression): try visit(expression, soft: soft)
        case .if(let branches, let otherwise):
            for branch in branches {
                try visit(branch.condition, soft: true)
                for inner in branch.body { try visit(inner, soft: true) }
            }
            for inner in otherwise { try visit(inner, soft: true) }
        case .for(let loop):
            try visit(loop.iterable, soft: soft)
            if let condition = loop.condition { try visit(condition, soft: false) }
            for inner in loop.body { try visit(inner, soft: false) }
            for inner in loop.elseBody { try visit(inner, soft: false) }
        case .set(_, let expression): try visit(expression, soft: soft)
        case .setBlock(_, let filters, let body):
            try check(filters, soft: soft)
            for inner in body { try visit(inner, soft: false) }
        case .macro(let macro):
            for parameter in macro.parameters {
                if let value = parameter.defaultValue { try visit(value, soft: false) }
            }
            for inner in macro.body { try visit(inner, soft: false) }
        case .callBlock(let call, let macro):
            try visit(call, soft: soft)
            for inner in macro.body { try visit(inner, soft: false) }
        case .filterBlock(let filters, let body):
            try check(filters, soft: soft)
            for inner in body { try visit(inner, soft: false) }
        case .with(let assignments, let body):
            for (_, value) in assignments { try visit(value, soft: soft) }
            for inner in body { try visit(inner, soft: false) }
        }
    }

    private static func check(_ filters: [FilterCall], soft: Bool) throws(TemplateError) {
        for filter in filters {
            if !soft, !Interpreter.filterNames.contains(filter.name) {
                throw .syntax("unknown filter '\(filter.name)'", line: filter.line)
            }
            for argument in filter.arguments { try visit(argument.value, soft: soft) }
        }
    }

    private static func visit(_ expression: Expression, soft: Bool) throws(TemplateError) {
        switch expression.kind {
        case .literal, .name: break
        case .list(let items), .tuple(let items):
            for item in items { try visit(item, soft: soft) }
        case .dict(let pairs):
            for pair in pairs {
                try visit(pair.key, soft: soft)
                try visit(pair.value, soft: soft)
            }
        case .attribute(let base, _), .negate(let base), .plus(let base), .not(let base):
            try visit(base, soft: soft)
        case .item(let base, let key):
            try visit(base, soft: soft)
            try visit(key, soft: soft)
        case .slice(let base, let start, let stop, let step):
            try visit(base, soft: soft)
            for part in [start, stop, step] {
                if let part { try visit(part, soft: soft) }
            }
        case .call(let base, let arguments):
            try visit(base, soft: soft)
            for argument in arguments { try visit(argument.value, soft: soft) }
        case .filter(let base, let name, let arguments):
            if !soft, !Interpreter.filterNames.contains(name) {
                throw .syntax("unknown filter '\(name)'", line: expression.line)
            }
            try visit(base, soft: soft)
            for argument in arguments { try visit(argument.value, soft: soft) }
        case .test(let base, let name, _, let arguments):
            if !soft, !Interpreter.testNames.contains(name) {
                throw .syntax("unknown test '\(name)'", line: expression.line)
            }
            try visit(base, soft: soft)
            for argument in arguments { try visit(argument.value, soft: soft) }
        case .and(let left, let right), .or(let left, let right), .binary(_, let left, let right):
            try visit(left, soft: soft)
            try visit(right, soft: soft)
        case .compare(let left, let operations):
            try visit(left, soft: soft)
            for (_, right) in operations { try visit(right, soft: soft) }
        case .conditional(let test, let then, let otherwise):
            try visit(test, soft: true)
            try visit(then, soft: true)
            if let otherwise { try visit(otherwise, soft: true) }
        }
    }
}
