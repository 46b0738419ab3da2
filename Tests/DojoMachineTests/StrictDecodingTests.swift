import DojoMachine
import Testing

/// Machine files are decoded strictly: each mistake is a `MachineError` naming the file and the key path.
@Suite("Strict decoding of machine files")
struct StrictDecodingTests {
    /// The tile preset's text with `old` replaced by `new` (which must occur).
    func tileYAML(_ old: String, _ new: String) throws -> String {
        let text = try #require(Presets.yaml("tile"))
        #expect(text.contains(old), "fixture: '\(old)' not in tile.yaml")
        return text.replacingOccurrences(of: old, with: new)
    }

    func error(_ yaml: String) -> String? {
        do {
            _ = try Machine.decode(yaml: yaml, file: "tile.yaml")
            return nil
        } catch let e as MachineError {
            return e.description
        } catch {
            return "not a MachineError: \(error)"
        }
    }

    @Test("a user file with bare values decodes, with the same totals as the preset")
    func bare() throws {
        let yaml = """
        name: mine
        kind: dojo
        summary: my D1
        top: d1
        count: 2
        node: {clock: 2 GHz, matrix_flops_per_cycle: 512, fp32_flops_per_cycle: 32, matrix_block: 8, sram_bytes: 1.25 MB,
               sram_load_bandwidth: 400GB/s, sram_store_bandwidth: 270e9, link_bytes_per_cycle: 64,
               hop_latency_cycles: 1, threads: 4, accumulator: fp32}
        d1: {nodes: 354, mesh_rows: 18, mesh_cols: 20, routing: adaptive, serdes_channels: 576, serdes_rate: 112Gbps,
             edge_bandwidth: 2TB/s, die_to_die_latency: 100ns, tdp: 0.4kW}
        calibration: {matrix_efficiency: 80%, vector_efficiency: 0.7, link_efficiency: 0.9, memory_efficiency: 1}
        """
        let m = try Machine.decode(yaml: yaml, file: "mine.yaml")
        let d1 = try Presets.load("d1")
        #expect(m.levels[1].peak == d1.total.peak)
        #expect(m.levels[1].sramBytes == d1.total.sramBytes)
        #expect(m.total.level == "system")
        #expect(m.total.chips == 2)
        #expect(m.parameters.allSatisfy { $0.provenance == .user })
        #expect(m.calibration.matrixEfficiency == 0.8)
    }

    @Test("unknown key")
    func unknownKey() throws {
        let e = error(try tileYAML("  threads:", "  sram_size: 1MB\n  threads:"))
        #expect(e?.hasPrefix("tile.yaml: node.sram_size: unknown key") == true, "\(e ?? "no error")")
        #expect(e?.contains("sram_bytes") == true)                       // names the allowed keys
        let top = error(try tileYAML("count: 1\n", "count: 1\ncolour: red\n"))
        #expect(top?.hasPrefix("tile.yaml: colour: unknown key") == true, "\(top ?? "no error")")
        let inner = error(try tileYAML("{value: 40, source:", "{value: 40, sorce:"))
        #expect(inner?.contains("tile.io_dies") == true, "\(inner ?? "no error")")
    }

    @Test("missing key")
    func missingKey() throws {
        let text = try #require(Presets.yaml("tile"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let without = lines.filter { !$0.hasPrefix("  sram_bytes:") }.joined(separator: "\n")
        #expect(error(without) == "tile.yaml: node.sram_bytes: missing key")
        let noTile = try #require(text.components(separatedBy: "tile:\n").first)
        #expect(error(noTile)?.contains("missing key") == true)
    }

    @Test("negative and zero values")
    func impossible() throws {
        #expect(error(try tileYAML("{value: 1.25MB,", "{value: -1,")) == "tile.yaml: node.sram_bytes: must be positive, got -1")
        #expect(error(try tileYAML("{value: 354,", "{value: 0,")) == "tile.yaml: d1.nodes: must be positive, got 0")
        #expect(error(try tileYAML("other_power: {value: 5kW,", "other_power: {value: -5kW,"))
                == "tile.yaml: tile.other_power: must not be negative, got -5kW")
        #expect(error(try tileYAML("count: 1", "count: -2")) == "tile.yaml: count: must be positive, got -2")
        #expect(error(try tileYAML("matrix_efficiency: {value: 0.7", "matrix_efficiency: {value: 1.5"))
                == "tile.yaml: calibration.matrix_efficiency: must be in (0, 1], got 1.5")
    }

    @Test("wrong types and wrong units")
    func wrongType() throws {
        #expect(error(try tileYAML("{value: 354,", "{value: many,")) == "tile.yaml: d1.nodes: expected an integer, got 'many'")
        #expect(error(try tileYAML("{value: 1.25MB,", "{value: 2GHz,"))
                == "tile.yaml: node.sram_bytes: expected bytes (e.g. 1.25MB, 32 GiB), got '2GHz'")
        #expect(error(try tileYAML("{value: 1.25MB,", "{value: [1, 2],"))?.hasPrefix("tile.yaml: node.sram_bytes.value: expected a scalar") == true)
        #expect(error(try tileYAML("node:\n", "node: 3\nx:\n"))?.hasPrefix("tile.yaml: node: expected a mapping") == true)
        #expect(error(try tileYAML("{value: fp32,", "{value: fp64,"))
                == "tile.yaml: node.accumulator: must be one of fp32, bf16, got 'fp64'")
        #expect(error(try tileYAML("source: \"S2: 1.25 MB", "assumption: \"x\", source: \"S2: 1.25 MB"))
                == "tile.yaml: node.sram_bytes: give exactly one of 'source', 'assumption' or 'measured' beside 'value'")
        #expect(error("just text")?.hasPrefix("tile.yaml: (top): expected a mapping") == true)
        #expect(error("a: [")?.hasPrefix("tile.yaml: not a valid machine file") == true)
    }

    @Test("inconsistent structure: a mesh smaller than its nodes, sections above top, duplicate keys")
    func inconsistent() throws {
        #expect(error(try tileYAML("{value: 18,", "{value: 17,"))
                == "tile.yaml: d1.mesh_rows: mesh 17 × 20 = 340 sites is smaller than d1.nodes = 354")
        // counts that would overflow the totals (issue 12): one bound per count, one for their product
        #expect(error(try tileYAML("{value: 18,", "{value: 9223372036854775807,"))
                == "tile.yaml: d1.mesh_rows: 9223372036854775807 is more than 2147483648, the most any count in a machine may be")
        let d1 = try #require(Presets.yaml("d1"))
        let withTile = d1 + "tile: {chip_rows: 5}\n"
        do {
            _ = try Machine.decode(yaml: withTile, file: "d1.yaml")
            Issue.record("accepted a tile section with top d1")
        } catch let e as MachineError {
            #expect(e.description.hasPrefix("d1.yaml: tile: section not used when top is d1"))
        }
        let twice = error(try tileYAML("count: 1\n", "count: 1\ncount: 2\n"))
        #expect(twice == "tile.yaml: not a valid machine file: Parser: expected all keys to be unique but found the following duplicated key(s): 'count'.",
                "\(twice ?? "no error")")
        #expect(error(try tileYAML("kind: dojo", "kind: tpu")) == "tile.yaml: kind: must be one of dojo, gpu, cpu, got 'tpu'")
    }

    @Test("a file on disk: errors name the file; a missing file is an unknown machine")
    func files() throws {
        #expect(throws: MachineError.self) { try Machine.resolve("/nonexistent/machine.yaml") }
        do {
            _ = try Machine.load(file: "/nonexistent/machine.yaml")
            Issue.record("read a missing file")
        } catch let e as MachineError {
            #expect(e.description.hasPrefix("/nonexistent/machine.yaml: cannot read"))
        }
    }
}

@Suite("Quantities with units")
struct UnitTests {
    @Test("sizes, rates, frequencies, power and time", arguments: [
        ("1.25MB", Dimension.bytes, 1.25e6), ("1.25 MiB", .bytes, 1.25 * 1_048_576), ("32GB", .bytes, 32e9),
        ("1024", .bytes, 1024), ("64B", .bytes, 64), ("2 KiB", .bytes, 2048),
        ("128GB/s", .bytesPerSecond, 128e9), ("400Gb/s", .bytesPerSecond, 50e9), ("112Gbps", .bytesPerSecond, 14e9),
        ("2GHz", .hertz, 2e9), ("2e9", .hertz, 2e9), ("362 TFLOP/s", .flopsPerSecond, 362e12),
        ("1.1EFLOPS", .flopsPerSecond, 1.1e18), ("15kW", .watts, 15e3), ("100ns", .seconds, 100e-9),
        ("1.3us", .seconds, 1.3e-6), ("1.3µs", .seconds, 1.3e-6), ("-1", .bytes, -1),
    ])
    func parses(_ text: String, _ dim: Dimension, _ value: Double) {
        let v = parseQuantity(text, dim)
        #expect(v != nil, "\(text)")
        if let v { #expect(abs(v / value - 1) < 1e-12, "\(text) → \(v)") }
    }

    @Test("wrong dimensions and junk are rejected", arguments: [
        ("2GHz", Dimension.bytes), ("1MB", .bytesPerSecond), ("fast", .hertz), ("", .watts), ("nan", .bytes),
        ("5 parsecs", .seconds), ("1mB", .bytes),
    ])
    func rejects(_ text: String, _ dim: Dimension) {
        #expect(parseQuantity(text, dim) == nil, "\(text)")
    }
}

/// `Machine.with(_:)`: change parameters by key path (what `--set` and a sweep use), as strictly as a file.
@Suite("Overriding parameters")
struct OverrideTests {
    @Test("a changed parameter changes the totals; the scale and name stay")
    func changes() throws {
        let tile = try Presets.load("tile")
        let big = try tile.with(["node.sram_bytes": "2.5MB"])
        #expect(big.total.sramBytes == 2 * tile.total.sramBytes)
        #expect(big.parameters.first { $0.path == "node.sram_bytes" }?.provenance == .user)
        #expect(big.total.peak == tile.total.peak)
        let h8 = try Machine.resolve("dgx-h100x8").with(["server.gpus": "4", "gpu.hbm_bytes": "141GB"])
        #expect(h8.name == "dgx-h100x8")
        #expect(h8.total.chips == 32)
        #expect(h8.total.hbmBytes == 32 * 141e9)
        let pod = try Machine.resolve("exapodx2").with(["dip.fabric_bisection_fraction": "50%"])
        #expect(pod.total.bisectionBandwidth == 0.5 * 20e12)
    }

    @Test("an unknown path, a section, or a bad value is a MachineError naming the path")
    func errors() throws {
        let tile = try Presets.load("tile"), h100 = try Presets.load("dgx-h100")
        // a GPU's power limit: optional, in watts, never above the part's TDP
        #expect(try h100.with(["gpu.power_limit": "500W"]).parameters.first { $0.path == "gpu.power_limit" }?.provenance == .user)
        for (machine, o, message) in [
            (tile, ["node.sram": "1MB"], "--set node.sram=1MB (on tile): node.sram: unknown key"),
            (tile, ["node": "1"], "--set node=1 (on tile): node: is a section, not a parameter"),
            (tile, ["node.sram_bytes": "-3"], "--set node.sram_bytes=-3 (on tile): node.sram_bytes: must be positive, got -3"),
            (tile, ["d1.mesh_cols": "19"], "--set d1.mesh_cols=19 (on tile): d1.mesh_rows: mesh 18 × 19 = 342 sites is smaller than d1.nodes = 354"),
            (tile, ["tray.tiles": "6"], "--set tray.tiles=6 (on tile): tray.tiles: unknown key"),
            (h100, ["gpu.power_limit": "800W"], "--set gpu.power_limit=800W (on dgx-h100): gpu.power_limit: 800 W is above the part's tdp of 700 W"),
            (h100, ["gpu.power_limit": "5GB"], "--set gpu.power_limit=5GB (on dgx-h100): gpu.power_limit: expected"),
            (h100, ["gpu.power_limit": "0W"], "--set gpu.power_limit=0W (on dgx-h100): gpu.power_limit: must be positive"),
        ] {
            do {
                _ = try machine.with(o)
                Issue.record("accepted \(o)")
            } catch let e as MachineError {
                #expect(e.description.hasPrefix(message), "\(e.description)")
            }
        }
    }
}
