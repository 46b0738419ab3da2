import DojoService
import Hummingbird
