import Foundation

/// Reads lines from the terminal with editing and history: left/right, Home/End (Ctrl-A/E), backspace, delete,
/// Ctrl-U (clear), Ctrl-W (delete a word), up/down through earlier lines, Ctrl-C (drop the line), Ctrl-D on an empty
/// line (end). When standard input is not a terminal it reads plain lines, so that pipes and scripts work too.
final class LineEditor {
    enum Input: Equatable {
        case line(String)
        /// Ctrl-C on the line: nothing to send.
        case interrupted
        /// Ctrl-D on an empty line, or the end of piped input.
        case end
    }

    private(set) var history: [String] = []
    let isTerminal = isatty(STDIN_FILENO) == 1
    private var saved = termios()

    /// Reads one line, showing `prompt` (a terminal only).
    func read(prompt: String) -> Input {
        guard isTerminal else {
            guard let line = Swift.readLine(strippingNewline: true) else { return .end }
            return .line(line)
        }
        write(prompt)
        enterRawMode()
        defer { leaveRawMode() }
        var buffer: [Character] = []
        var cursor = 0
        var recalled = history.count
        var draft: [Character] = []
        func redraw() {
            // Back to the line's start, the prompt and text again, clear what is left, the cursor in place.
            var out = "\r" + prompt + String(buffer) + "\u{1B}[K"
            let back = buffer.count - cursor
            if back > 0 { out += "\u{1B}[\(back)D" }
            write(out)
        }
        while true {
            guard let byte = readByte() else { return .end }
            switch byte {
            case 0x0D, 0x0A:   // Enter
                write("\r\n")
                let line = String(buffer)
                if !line.trimmingCharacters(in: .whitespaces).isEmpty, history.last != line { history.append(line) }
                return .line(line)
            case 0x03:   // Ctrl-C
                write("^C\r\n")
                return .interrupted
            case 0x04:   // Ctrl-D
                if buffer.isEmpty { write("\r\n"); return .end }
                if cursor < buffer.count { buffer.remove(at: cursor); redraw() }
            case 0x7F, 0x08:   // Backspace
                if cursor > 0 { buffer.remove(at: cursor - 1); cursor -= 1; redraw() }
            case 0x01: cursor = 0; redraw()   // Ctrl-A
            case 0x05: cursor = buffer.count; redraw()   // Ctrl-E
            case 0x15: buffer.removeFirst(cursor); cursor = 0; redraw()   // Ctrl-U
            case 0x17:   // Ctrl-W
                var start = cursor
                while start > 0, buffer[start - 1] == " " { start -= 1 }
                while start > 0, buffer[start - 1] != " " { start -= 1 }
                buffer.removeSubrange(start..<cursor); cursor = start; redraw()
            case 0x0C: write("\u{1B}[H\u{1B}[2J"); redraw()   // Ctrl-L
            case 0x1B:   // an escape sequence: arrows, Home, End, Delete
                guard let b1 = readByte(), b1 == UInt8(ascii: "[") || b1 == UInt8(ascii: "O"), let b2 = readByte() else { continue }
                switch b2 {
                case UInt8(ascii: "A"):   // up
                    guard recalled > 0 else { continue }
                    if recalled == history.count { draft = buffer }
                    recalled -= 1
                    buffer = Array(history[recalled]); cursor = buffer.count; redraw()
                case UInt8(ascii: "B"):   // down
                    guard recalled < history.count else { continue }
                    recalled += 1
                    buffer = recalled == history.count ? draft : Array(history[recalled]); cursor = buffer.count; redraw()
                case UInt8(ascii: "C"): if cursor < buffer.count { cursor += 1; redraw() }
                case UInt8(ascii: "D"): if cursor > 0 { cursor -= 1; redraw() }
                case UInt8(ascii: "H"): cursor = 0; redraw()
                case UInt8(ascii: "F"): cursor = buffer.count; redraw()
                case UInt8(ascii: "3"):   // Delete is ESC [ 3 ~
                    _ = readByte()
                    if cursor < buffer.count { buffer.remove(at: cursor); redraw() }
                default:
                    // Other sequences (ESC [ 1 ; 5 C …) are read to their final byte and ignored.
                    var b = b2
                    while !(0x40...0x7E).contains(b), let next = readByte() { b = next }
                }
            default:
                guard byte >= 0x20 else { continue }
                // A UTF-8 character: its first byte says how many follow.
                var bytes = [byte]
                let extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0
                for _ in 0..<extra { if let b = readByte() { bytes.append(b) } }
                for ch in String(decoding: bytes, as: UTF8.self) { buffer.insert(ch, at: cursor); cursor += 1 }
                if cursor == buffer.count { write(String(decoding: bytes, as: UTF8.self)) } else { redraw() }
            }
        }
    }

    private func readByte() -> UInt8? {
        var b: UInt8 = 0
        while true {
            let n = Foundation.read(STDIN_FILENO, &b, 1)
            if n == 1 { return b }
            if n < 0, errno == EINTR { continue }
            return nil
        }
    }

    private func write(_ s: String) {
        var s = s
        s.withUTF8 { p in
            guard let base = p.baseAddress else { return }
            var off = 0
            while off < p.count {
                let n = Foundation.write(STDOUT_FILENO, base + off, p.count - off)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                off += n
            }
        }
    }

    private func enterRawMode() {
        tcgetattr(STDIN_FILENO, &saved)
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
    }

    private func leaveRawMode() {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
    }
}
