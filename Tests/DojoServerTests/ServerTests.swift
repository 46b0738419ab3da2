import Testing
import DojoServer
