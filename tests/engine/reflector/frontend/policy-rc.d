#!/bin/sh
# /usr/sbin/policy-rc.d: invoke-rc.d asks it before starting a service; 101 = "not allowed",
# so package scripts start no daemon while the image is built (nor later in a container).
exit 101
