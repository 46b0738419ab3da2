import Testing
@testable import DojoServer
