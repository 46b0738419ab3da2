import DojoReport
import Foundation

/// A data-file error a user can cause: the file, the line (1-based, where the record starts) and the column
/// (1-based, with its header name when known), and what is wrong.
/// `gpu-training.csv:14: column 13 (value): expected a positive number, got 'fast'`.
public struct ValidationDataError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var columnName: String?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, columnName: String? = nil, message: String) {
        self.file = file; self.line = line; self.column = column; self.columnName = columnName; self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ": "
        switch (column, columnName) {
        case let (c?, n?): s += "column \(c) (\(n)): "
        case let (c?, nil): s += "column \(c): "
        case let (nil, n?): s += "column '\(n)': "
        case (nil, nil): break
        }
        return s + message
    }
}

/// A CSV file read strictly as RFC 4180 says: fields separated by commas, records by CRLF or LF; a field that
/// holds a comma, a quote or a line break is quoted, and a quote inside it is doubled. The first record is the
/// header. Everything else is an error that names the line and the column: a quote that is never closed, a quote
/// inside an unquoted field, text after a closing quote, a record with more or fewer fields than the header, an
/// empty line, a duplicate or empty column name. A UTF-8 byte-order mark at the start is skipped.
public struct CSVTable: Sendable, Equatable {
    /// One record: its fields and the line it starts on (a quoted field may span lines).
    public struct Record: Sendable, Equatable {
        public var line: Int
        public var fields: [String]
    }

    /// The name the file goes by in error messages.
    public var file: String
    public var header: [String]
    /// The records after the header.
    public var records: [Record]

    /// The index of a column by its header name.
    public func index(of column: String) -> Int? { header.firstIndex(of: column) }

    /// Parses `text`; `file` names it in errors.
    public init(parsing text: String, file: String) throws {
        self.file = file
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

        var header: [String]?
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1
        var inQuotes = false, wasQuoted = false, afterClosingQuote = false
        var quoteLine = 1
        // Whether the record being read had a quoted field (an empty quoted field on its own line is a record).
        var wasQuotedRecord = false

        func fail(_ line: Int, column: Int?, _ message: String) -> ValidationDataError {
            let name = column.flatMap { c in header.flatMap { c - 1 < $0.count ? $0[c - 1] : nil } }
            return ValidationDataError(file: file, line: line, column: column, columnName: name, message: message)
        }
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            wasQuoted = false
            afterClosingQuote = false
        }
        func endRecord() throws {
            defer { fields.removeAll(keepingCapacity: true) }
            if fields.count == 1, fields[0].isEmpty, !wasQuotedRecord {
                throw fail(recordLine, column: nil, "empty line (every record needs \(header?.count ?? 1) fields; remove the line)")
            }
            if let h = header {
                guard fields.count == h.count else {
                    throw fail(recordLine, column: nil,
                               "\(fields.count) fields, but the header has \(h.count) (a comma inside a field needs quotes)")
                }
                records.append(Record(line: recordLine, fields: fields))
            } else {
                var seen: Set<String> = []
                for (i, name) in fields.enumerated() {
                    if name.isEmpty { throw fail(recordLine, column: i + 1, "empty column name in the header") }
                    if !seen.insert(name).inserted {
                        throw fail(recordLine, column: i + 1, "column '\(name)' appears twice in the header")
                    }
                }
                header = fields
            }
        }
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            if inQuotes {
                if c == quote {
                    if i + 1 < n, bytes[i + 1] == quote {
                        field.append(quote); i += 2; continue
                    }
                    inQuotes = false; afterClosingQuote = true; i += 1; continue
                }
                if c == lf { line += 1 }
                field.append(c); i += 1; continue
            }
            switch c {
            case quote:
                if field.isEmpty && !wasQuoted {
                    inQuotes = true; wasQuoted = true; wasQuotedRecord = true; quoteLine = line
                } else if afterClosingQuote {
                    throw fail(line, column: fields.count + 1, "text after the closing quote of a quoted field")
                } else {
                    throw fail(line, column: fields.count + 1,
                               "a quote inside an unquoted field (quote the whole field and double the quotes inside)")
                }
                i += 1
            case comma:
                endField(); i += 1
            case cr, lf:
                if c == cr {
                    guard i + 1 < n, bytes[i + 1] == lf else {
                        throw fail(line, column: fields.count + 1, "a carriage return not followed by a line feed")
                    }
                    i += 1
                }
                endField()
                try endRecord()
                wasQuotedRecord = false
                line += 1; recordLine = line
                i += 1
            default:
                if afterClosingQuote {
                    throw fail(line, column: fields.count + 1, "text after the closing quote of a quoted field")
                }
                field.append(c); i += 1
            }
        }
        if inQuotes {
            throw fail(quoteLine, column: fields.count + 1, "the quote that opens this field is never closed")
        }
        if !field.isEmpty || !fields.isEmpty || wasQuoted {
            endField()
            try endRecord()
        }
        guard let header else {
            throw ValidationDataError(file: file, message: "the file is empty (expected a CSV header line)")
        }
        self.header = header
        self.records = records
    }

    /// Reads a CSV file from disk; errors name it as the user gave it.
    public init(contentsOfFile path: String) throws {
        let name = (path as NSString).lastPathComponent
        let data: Data
        do { data = try UserFiles.read(path, what: "CSV file", limit: 1 << 28) } catch {
            throw ValidationDataError(file: path, message: error.problem)
        }
        try self.init(data: data, file: name)
    }

    /// Parses the bytes of a CSV file: UTF-8 text without NUL bytes.
    public init(data: Data, file: String) throws {
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
            throw ValidationDataError(file: file, message: "not a CSV file: not UTF-8 text")
        }
        try self.init(parsing: text, file: file)
    }
}
