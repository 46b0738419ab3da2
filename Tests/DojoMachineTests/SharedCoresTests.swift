import DojoMachine
import Testing

/// `dojo machine calibrate` reads whether hosts really have the cores they show from how fast ranks compute at once.
@Suite("Calibration: shared cores against contention")
struct SharedCoresTests {
    @Test("ranks of one host that lose to contention keep every core; a loss only a CPU quota explains does not")
    func oneHost() {
        // two ranks on this VM's two cores reached 74–92 % of one alone: contention, not one core
        for share in [0.74, 0.8, 0.92, 1.0] { #expect(CPUSpec.sharedCores(share: share, visible: 2, hosts: 1) == nil) }
        // two ranks at half speed each: one real core under the two shown
        #expect(CPUSpec.sharedCores(share: 0.5, visible: 2, hosts: 1) == 1)
        #expect(CPUSpec.sharedCores(share: 0.25, visible: 8, hosts: 1) == 2)
    }

    @Test("namespace hosts on one machine get their share of its cores")
    func namespaceHosts() {
        #expect(CPUSpec.sharedCores(share: 0.52, visible: 2, hosts: 2) == 1)
        #expect(CPUSpec.sharedCores(share: 0.7, visible: 2, hosts: 2) == 1)
        #expect(CPUSpec.sharedCores(share: 0.5, visible: 8, hosts: 2) == 4)
        #expect(CPUSpec.sharedCores(share: 0.9, visible: 2, hosts: 2) == nil)
        #expect(CPUSpec.sharedCores(share: 0.74, visible: 16, hosts: 4) == 12)
        // a share that rounds back to every core is no sharing
        #expect(CPUSpec.sharedCores(share: 0.7, visible: 1, hosts: 2) == nil)
    }

    @Test("more ranks than cores take turns: half of one alone each is no sharing, a quarter is")
    func moreRanksThanCores() {
        // 4 ranks on 2 cores: each gets half a core, 0.5 of one alone, with nothing shared
        #expect(CPUSpec.sharedCores(share: 0.5, visible: 2, hosts: 1, ranksPerHost: 4) == nil)
        #expect(CPUSpec.sharedCores(share: 0.42, visible: 2, hosts: 1, ranksPerHost: 4) == nil)
        // a quarter each: the two cores shown are one
        #expect(CPUSpec.sharedCores(share: 0.25, visible: 2, hosts: 1, ranksPerHost: 4) == 1)
        // the ranks of a host at or under its cores: as before
        #expect(CPUSpec.sharedCores(share: 0.5, visible: 2, hosts: 1, ranksPerHost: 2) == 1)
    }
}
