import Testing
@testable import DojoService
